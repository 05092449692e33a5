// A local HTTP server that answers every request after a delay, holding no
// thread per request: the benchmark uses it to keep 10,000 requests in flight.
//   node scripts/slow_server.js PORT DELAY_MS
const http = require("http");
const port = Number(process.argv[2] || 0);
const delay = Number(process.argv[3] || 2000);
const server = http.createServer((req, res) => {
  setTimeout(() => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("slow ok\n");
  }, delay);
});
server.maxConnections = 100000;
server.keepAliveTimeout = 60000;
server.listen(port, "127.0.0.1", () => {
  console.log(server.address().port);
});
