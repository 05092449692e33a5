"""The Scrapy peer of scripts/bench's crawl section: the spider
examples/crawl.lua is in shoal. From START_URL it follows every link to the
same host and port, each page once (Scrapy's duplicate filter), obeying
robots.txt, and writes one item per page (url, title, count of distinct
same-site links) to ITEMS_FILE as JSON lines through Scrapy's feed exports.
64 requests in flight, all of them allowed on the one host.

MODE shipped keeps Scrapy's other settings as they come; tuned sets
CONCURRENT_ITEMS=1, Scrapy's advice for throughput when items are cheap.
Run with Debian's python3-scrapy: /usr/bin/python3 scrapy_crawl.py ...
usage: scrapy_crawl.py START_URL ITEMS_FILE [shipped|tuned]"""
import sys
from urllib.parse import urldefrag, urlsplit

import scrapy
from scrapy.crawler import CrawlerProcess


class SiteSpider(scrapy.Spider):
    name = "bench_site"

    def __init__(self, start_url, **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [start_url]
        self.site = urlsplit(start_url)[:2]  # scheme and host:port

    def parse(self, response):
        same_site = set()
        for href in response.css("a::attr(href)").getall():
            url = urldefrag(response.urljoin(href))[0]
            if urlsplit(url)[:2] == self.site:
                same_site.add(url)
        yield {
            "url": response.url,
            "title": response.css("title::text").get(),
            "links": len(same_site),
        }
        for url in same_site:
            yield response.follow(url, callback=self.parse)


def main():
    if len(sys.argv) not in (3, 4) or sys.argv[3:] not in ([], ["shipped"], ["tuned"]):
        sys.exit("usage: scrapy_crawl.py START_URL ITEMS_FILE [shipped|tuned]")
    start_url, items_file = sys.argv[1], sys.argv[2]
    settings = {
        "CONCURRENT_REQUESTS": 64,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 64,
        "ROBOTSTXT_OBEY": True,
        "LOG_LEVEL": "WARNING",
        # what `scrapy startproject` writes; the older default only warns
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
        "FEEDS": {items_file: {"format": "jsonlines", "overwrite": True}},
    }
    if sys.argv[3:] == ["tuned"]:
        settings["CONCURRENT_ITEMS"] = 1
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(SiteSpider)
    process.crawl(crawler, start_url=start_url)
    process.start()
    # a spider that died halfway still leaves a feed: say so by the exit code
    errors = crawler.stats.get_value("log_count/ERROR", 0)
    reason = crawler.stats.get_value("finish_reason")
    if reason != "finished" or errors:
        sys.exit(f"scrapy_crawl: the crawl of {start_url} ended as '{reason}' "
                 f"with {errors} errors logged (see above)")


if __name__ == "__main__":
    main()
