# The demo page served at / (microphone -> /v1/realtime -> speaker). Plain
# files, no build step; [server] web_root defaults to $(pkgdatadir)/web.
webdir = $(pkgdatadir)/web
dist_web_DATA = web/index.html web/app.js web/worklet.js web/style.css
