/* psbridge: Swagger UI bootstrap. Kept as an external file so the page works under
 * Content-Security-Policy "script-src 'self'". Configuration comes from data-* attributes
 * on #swagger-ui, rendered by app/docs_pages.py. */
(function () {
  "use strict";
  var node = document.getElementById("swagger-ui");
  if (!node || typeof window.SwaggerUIBundle !== "function") {
    return;
  }
  node.textContent = "";
  window.ui = window.SwaggerUIBundle({
    url: node.getAttribute("data-openapi-url"),
    domNode: node,
    deepLinking: true,
    // null disables the badge that would call the public online validator.
    validatorUrl: null,
    presets: [window.SwaggerUIBundle.presets.apis],
    plugins: [window.SwaggerUIBundle.plugins.DownloadUrl],
    layout: "BaseLayout",
    displayRequestDuration: true,
    persistAuthorization: false
  });
})();
