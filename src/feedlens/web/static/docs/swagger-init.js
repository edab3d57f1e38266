// Swagger UI over this server's OpenAPI description. No validator badge (it would call a third-party
// server) and no OAuth redirect page: the API takes keys as headers ("Authorize" button).
(function start() {
  if (!window.SwaggerUIBundle) return; // the bundle is missing: the page's own message stays
  window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    persistAuthorization: false,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
})();
