// Conformance fixture: answers every request with a greeting and the environment it got.
const http = require("http");
const port = Number(process.env.PORT || 3000);
http
  .createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/plain" });
    res.end(`hello from outfitter nodejs-app (NODE_ENV=${process.env.NODE_ENV})\n`);
  })
  .listen(port, "127.0.0.1");
