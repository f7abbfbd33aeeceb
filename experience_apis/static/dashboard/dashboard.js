// Keeps the key in sessionStorage and sends it as a bearer header; never in a URL or cookie.
(function () {
  const input = document.getElementById("api-key");
  const out = document.getElementById("whoami");
  input.value = sessionStorage.getItem("psbridge.key") || "";
  async function whoami() {
    const key = sessionStorage.getItem("psbridge.key");
    if (!key) return;
    const res = await fetch("/graphql", {
      method: "POST",
      headers: {"Content-Type": "application/json", "Authorization": "Bearer " + key},
      body: JSON.stringify({query: "{ viewer { name role } }"}),
    });
    const body = await res.json();
    out.textContent = res.ok && body.data ? `Signed in as ${body.data.viewer.name} (${body.data.viewer.role})`
                                          : `Key refused: ${body.detail || res.status}`;
  }
  document.getElementById("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("psbridge.key", input.value.trim());
    whoami();
  });
  whoami();
})();
