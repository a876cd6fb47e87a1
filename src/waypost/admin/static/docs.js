// The admin API's docs: Swagger UI from the package, with the CSRF header on every request so
// that a browser signed in by the login cookie can try the writing calls too.
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  var header = root.getAttribute("data-csrf-header");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    requestInterceptor: function (request) {
      request.headers[header] = "1";
      return request;
    },
  });
});
