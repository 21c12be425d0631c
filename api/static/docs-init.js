// Starts Swagger UI on the API's schema. It is a file, not an inline script, so that /docs works
// under a Content-Security-Policy without 'unsafe-inline'; the page says where the schema is.
(function () {
  "use strict";
  var script = document.currentScript;
  window.ui = SwaggerUIBundle({
    url: script.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // No badge asking a validator elsewhere about the schema: nothing leaves the machine.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
