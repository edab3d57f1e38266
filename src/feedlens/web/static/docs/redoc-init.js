// ReDoc over this server's OpenAPI description; system fonts, so nothing is fetched from a font service.
(function start() {
  if (!window.Redoc) return; // the bundle is missing: the page's own message stays
  const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif';
  window.Redoc.init("/openapi.json", {
    theme: { typography: { fontFamily: FONT, headings: { fontFamily: FONT } } },
    hideDownloadButton: false,
  }, document.getElementById("redoc"));
})();
