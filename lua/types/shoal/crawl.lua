---@meta shoal.crawl
-- Type annotations of `require "shoal.crawl"` (lua/shoal/crawl.lua) for
-- lua-language-server. Never run. A URL argument that is not a string
-- raises; a URL that does not parse returns nil and a message.

---The parts of a URL, as `crawl.parse` returns them.
---@class shoal.crawl.URL
---@field scheme string lower-case
---@field host? string lower-case, a host that is not ASCII as its IDNA A-label ("xn--..."); an IPv6 address without brackets (nil when the URL has no authority)
---@field port? integer the port written in the URL, if any
---@field userinfo? string
---@field path string always a string, "" when empty
---@field query? string without "?"; "" for a "?" with nothing after it
---@field fragment? string without "#"

---Normalisation options, for `crawl.normalize` and `crawl.links`.
---@class shoal.crawl.Options
---@field sort_query? boolean query parameters in order of name (a stable sort: equal names keep their order)
---@field strip_tracking? boolean drop tracking parameters: utm_*, gclid, fbclid, msclkid, dclid, yclid, mc_cid, mc_eid, _ga, _gl, igshid (any case); a query left empty loses its "?"

---Options of `crawl.links` and `crawl.links_ex`: the normalisation options and the kinds of link wanted.
---@class shoal.crawl.LinkOptions: shoal.crawl.Options
---@field kinds? ("a"|"area"|"iframe"|"frame"|"refresh"|"link"|"img")[] the kinds of link to return (default a, area, iframe, frame, refresh); "link" is `<link href>` (its rel in the record), "img" is `<img src>` and the candidates of `<img srcset>` and `<source srcset>`

---A link of `crawl.links_ex`.
---@class shoal.crawl.Link
---@field url string the link, normalised
---@field kind "a"|"area"|"iframe"|"frame"|"refresh"|"link"|"img" the tag it came from (its first occurrence)
---@field nofollow boolean every occurrence had `rel` holding `nofollow`, or the page's `<meta name=robots>` says nofollow (or none)
---@field rel? string a `<link>`'s rel, as written

---The module `require "shoal.crawl"` returns.
---@class shoal.crawl
---@field options shoal.crawl.Options the defaults normalize and links use for an option their opts do not set (both false); set them at the script's top level so every state has them
local crawl = {}

---Splits an absolute URL into its parts (RFC 3986).
---@param url string
---@return shoal.crawl.URL? parts
---@return string? err
function crawl.parse(url) end

---Resolves a reference against a base URL (RFC 3986 section 5.2): the absolute URL.
---@param base string absolute URL
---@param ref string reference as written in a page, e.g. "../a?b"
---@return string? url
---@return string? err
function crawl.resolve(base, ref) end

---The canonical form of an http(s) URL (the dedup key): lower-case scheme and host, a host that is not ASCII (raw or percent-encoded UTF-8) as its A-label, default port and fragment dropped, dot segments removed, escapes normalised; opts (else `crawl.options`) may sort the query and strip tracking parameters. An unknown option raises.
---@param url string
---@param opts? shoal.crawl.Options
---@return string? url
---@return string? err
function crawl.normalize(url, opts) end

---The host of a URL, lower-case (an A-label when it is not ASCII), without its port.
---@param url string
---@return string? host
---@return string? err
function crawl.host(url) end

---The authority a crawl groups a URL's jobs by: its host as `normalize` writes it, plus ":port" when the port is not the scheme's default ("example.com", "127.0.0.1:8080", "[::1]:8443").
---@param url string
---@return string? authority
---@return string? err
function crawl.authority(url) end

---Whether two URLs have the same scheme, host and (effective) port; false for anything that is not a URL.
---@param a string
---@param b string
---@return boolean
function crawl.same_host(a, b) end

---The links of an HTML page, found by a scan in C (no DOM): by default the pages a crawl follows, `<a href>`, `<area href>`, `<iframe src>`, `<frame src>` and `<meta http-equiv=refresh>`'s URL (`opts.kinds` chooses). Entities decoded (HTML5's whole table), resolved against the first `<base href>` or the page's URL, normalised (with opts, else `crawl.options`), http(s) only, each once, in page order; comments, scripts and styles skipped. Never raises on a page's content; an unknown option or kind raises.
---@param html string the page's body
---@param base_url string the page's URL (after redirects)
---@param opts? shoal.crawl.LinkOptions
---@return string[] links
function crawl.links(html, base_url, opts) end

---As `crawl.links`, but each link a record saying where it came from and whether it may be followed.
---@param html string the page's body
---@param base_url string the page's URL (after redirects)
---@param opts? shoal.crawl.LinkOptions
---@return shoal.crawl.Link[] links
function crawl.links_ex(html, base_url, opts) end

---A page a sitemap lists.
---@class shoal.crawl.SitemapPage
---@field url string the page (the sitemap's `<loc>`)
---@field lastmod? string the sitemap's `<lastmod>` for it, as written
---@field sitemap string the sitemap file that listed it

---The pages a sitemap lists, one per call of the iterator: sitemap indexes followed (5 levels, each file once), gzip'd files inflated; a file that cannot be had or read is a warning. Fetches, so call it from `produce` or `handle`.
---@param url string the sitemap (or sitemap index) URL
---@return fun(): shoal.crawl.SitemapPage? pages
function crawl.sitemap(url) end

---The Sitemap URLs the robots.txt of `url`'s site lists, in order (fetches robots.txt).
---@param url string any URL of the site
---@return string[] sitemaps
function crawl.sitemaps(url) end

return crawl
