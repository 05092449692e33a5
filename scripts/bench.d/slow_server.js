// A local HTTP server that answers every request after a delay, holding no
// thread per request: the benchmark uses it to keep 10,000 requests in flight,
// and, given a ROOT, to serve a generated site with a latency (the queue
// section's crawl bound by time in flight, not by CPU), logging each request
// as nginx's crawl format does ("METHOD URI STATUS") to LOG.
//   node scripts/slow_server.js PORT DELAY_MS [ROOT LOG]
const http = require("http");
const fs = require("fs");
const path = require("path");
const port = Number(process.argv[2] || 0);
const delay = Number(process.argv[3] || 2000);
const root = process.argv[4];
const log = process.argv[5] ? fs.createWriteStream(process.argv[5], { flags: "a" }) : null;
const types = { ".html": "text/html", ".txt": "text/plain" };

function serveFile(req, res) {
  const url = new URL(req.url, "http://x");
  let file = path.join(root, path.normalize(decodeURIComponent(url.pathname)));
  if (!file.startsWith(root)) file = root + "/missing";
  if (url.pathname.endsWith("/")) file = path.join(file, "index.html");
  fs.readFile(file, (err, body) => {
    const status = err ? 404 : 200;
    res.writeHead(status, { "content-type": types[path.extname(file)] || "text/plain" });
    res.end(err ? "not found\n" : body);
    if (log) log.write(`${req.method} ${req.url} ${status}\n`);
  });
}

const server = http.createServer((req, res) => {
  setTimeout(() => {
    if (root) return serveFile(req, res);
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("slow ok\n");
  }, delay);
});
server.maxConnections = 100000;
server.keepAliveTimeout = 60000;
server.listen(port, "127.0.0.1", () => {
  console.log(server.address().port);
});
