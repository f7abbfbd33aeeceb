/* psbridge: GraphiQL bootstrap. External file so the page works under
 * Content-Security-Policy "script-src 'self'". Configuration comes from data-* attributes
 * on #graphiql, rendered by experience_apis/graphiql_page.py.
 *
 * The API key typed in the bar is kept in sessionStorage (per tab, cleared when the tab
 * closes) and sent as "Authorization: Bearer <key>". A header set in GraphiQL's own
 * headers editor takes precedence over it. */
(function () {
  "use strict";
  var STORAGE_KEY = "psbridge.graphiql.apiKey";
  var root = document.getElementById("graphiql");
  var form = document.getElementById("psb-auth");
  var input = document.getElementById("psb-key");
  var clearButton = document.getElementById("psb-clear");
  var status = document.getElementById("psb-status");
  if (!root || !window.React || !window.ReactDOM || !window.GraphiQL) {
    if (root) {
      root.textContent = "GraphiQL failed to load its scripts.";
    }
    return;
  }
  var endpoint = root.getAttribute("data-endpoint");
  var schemaUrl = root.getAttribute("data-schema-url");
  // The schema comes as an introspection result from schemaUrl: GraphiQL's own introspection query is
  // deeper than the API's depth limit. Null (production) means no schema: GraphiQL then sends no introspection.
  var schema = null;

  function storage() {
    try {
      return window.sessionStorage;
    } catch (e) {
      return null;
    }
  }

  function loadKey() {
    var s = storage();
    return (s && s.getItem(STORAGE_KEY)) || "";
  }

  function saveKey(key) {
    var s = storage();
    if (!s) {
      return;
    }
    if (key) {
      s.setItem(STORAGE_KEY, key);
    } else {
      s.removeItem(STORAGE_KEY);
    }
  }

  var baseFetcher = window.GraphiQL.createFetcher({ url: endpoint });
  var reactRoot = window.ReactDOM.createRoot(root);

  function makeFetcher(key) {
    // A new function per key: GraphiQL refetches the schema when its fetcher changes.
    return function (params, opts) {
      var headers = {};
      if (key) {
        headers.Authorization = "Bearer " + key;
      }
      var editorHeaders = (opts && opts.headers) || {};
      Object.keys(editorHeaders).forEach(function (name) {
        headers[name] = editorHeaders[name];
      });
      return baseFetcher(params, Object.assign({}, opts || {}, { headers: headers }));
    };
  }

  function showStatus(key) {
    if (status) {
      status.textContent = key ? "key set (this tab only)" : "no key: requests are unauthenticated";
    }
  }

  function render(key) {
    showStatus(key);
    reactRoot.render(
      window.React.createElement(
        window.GraphiQL,
        {
          fetcher: makeFetcher(key),
          schema: schema,
          shouldPersistHeaders: false,
          isHeadersEditorEnabled: true
        },
        window.React.createElement(window.GraphiQL.Logo, null, "psbridge GraphiQL")
      )
    );
  }

  var current = loadKey();
  if (input) {
    input.value = current;
  }

  function apply() {
    var key = input ? input.value.trim() : "";
    saveKey(key);
    if (key !== current) {
      current = key;
      render(current);
    } else {
      showStatus(current);
    }
  }

  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      apply();
    });
  }
  if (input) {
    input.addEventListener("change", apply);
  }
  if (clearButton) {
    clearButton.addEventListener("click", function () {
      if (input) {
        input.value = "";
      }
      apply();
    });
  }

  function start() {
    render(current);
  }

  if (schemaUrl && window.fetch) {
    window
      .fetch(schemaUrl, { headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (body) {
        schema = body && body.data ? body.data : null;
      })
      .catch(function () {
        schema = null;
      })
      .then(start);
  } else {
    start();
  }
})();
