// The Crawlee peer of scripts/bench's crawl section: the spider
// examples/crawl.lua is in shoal, as a CheerioCrawler. From START_URL it
// follows every link to the same host (enqueueLinks' same-hostname), each
// page once (the request queue's unique keys), obeying robots.txt, and
// writes one item per page (url, title, count of distinct same-site links)
// to ITEMS_FILE as JSON lines once the crawl is over. Storage stays in
// memory (persistStorage off): nothing is written under ./storage.
//
// MODE shipped caps the autoscaled pool at 64 and leaves its scaling alone
// (it starts at 10 and grows slowly); pinned holds it at 64 from the start
// (minConcurrency and desiredConcurrency), as Crawlee's docs advise when
// the machine and the site can take it.
//
// usage: node crawl.mjs START_URL ITEMS_FILE [shipped|pinned]
import { writeFileSync } from 'node:fs';
import { CheerioCrawler, Configuration, log } from '@crawlee/cheerio';

const [startUrl, itemsFile, mode = 'shipped', ...rest] = process.argv.slice(2);
if (!itemsFile || rest.length || !['shipped', 'pinned'].includes(mode)) {
  console.error('usage: node crawl.mjs START_URL ITEMS_FILE [shipped|pinned]');
  process.exit(2);
}
const site = new URL(startUrl);
log.setLevel(log.LEVELS.WARNING);

const pinned = mode === 'pinned'
  ? { minConcurrency: 64, autoscaledPoolOptions: { desiredConcurrency: 64 } }
  : {};
const crawler = new CheerioCrawler({
  maxConcurrency: 64,
  ...pinned,
  respectRobotsTxtFile: true,
  async requestHandler({ request, $, enqueueLinks, pushData }) {
    const url = request.loadedUrl ?? request.url;
    const sameSite = new Set();
    $('a[href]').each((_, a) => {
      let link;
      try {
        link = new URL($(a).attr('href'), url);
      } catch {
        return; // not a URL: nothing to follow
      }
      link.hash = '';
      if (link.protocol === site.protocol && link.host === site.host) sameSite.add(link.href);
    });
    const title = $('title').first().text();
    await pushData({ url, title: title || null, links: sameSite.size });
    await enqueueLinks({ strategy: 'same-hostname' });
  },
  failedRequestHandler({ request }) {
    console.error(`crawl.mjs: ${request.url} failed: ${request.errorMessages.at(-1)}`);
    process.exitCode = 1;
  },
}, new Configuration({ persistStorage: false }));

await crawler.run([startUrl]);
const { items } = await crawler.getData();
writeFileSync(itemsFile, items.map((item) => JSON.stringify(item) + '\n').join(''));
