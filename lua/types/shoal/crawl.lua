---@meta shoal.crawl
-- Type annotations of `require "shoal.crawl"` (lua/shoal/crawl.lua) for
-- lua-language-server. Never run. A URL argument that is not a string
-- raises; a URL that does not parse returns nil and a message.

---The parts of a URL, as `crawl.parse` returns them.
---@class shoal.crawl.URL
---@field scheme string lower-case
---@field host? string lower-case; an IPv6 address without brackets (nil when the URL has no authority)
---@field port? integer the port written in the URL, if any
---@field userinfo? string
---@field path string always a string, "" when empty
---@field query? string without "?"; "" for a "?" with nothing after it
---@field fragment? string without "#"

---The module `require "shoal.crawl"` returns.
---@class shoal.crawl
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

---The canonical form of an http(s) URL (the dedup key): lower-case scheme and host, default port and fragment dropped, dot segments removed, escapes normalised.
---@param url string
---@return string? url
---@return string? err
function crawl.normalize(url) end

---The host of a URL, lower-case.
---@param url string
---@return string? host
---@return string? err
function crawl.host(url) end

---Whether two URLs have the same scheme, host and (effective) port; false for anything that is not a URL.
---@param a string
---@param b string
---@return boolean
function crawl.same_host(a, b) end

---The hrefs of an HTML page's `<a>` and `<area>` tags, resolved (against its `<base>` or its URL) and normalised, http(s) only, each once, in page order. Never raises.
---@param html string the page's body
---@param base_url string the page's URL (after redirects)
---@return string[] links
function crawl.links(html, base_url) end

return crawl
