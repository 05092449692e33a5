-- shoal.html: HTML documents for scripts, on libxml2's HTML parser (what lxml,
-- and so Scrapy, stand on), queried with CSS selectors or XPath.
--
--   local doc = shoal.html.parse(res.body, res.url)   (or require "shoal.html")
--   doc:css(selector)      -> array of nodes, in document order
--   doc:first(selector)    -> the first node, or nil
--   doc:xpath(expr)        -> array of nodes (attributes and text as strings), or the
--                             number, string or boolean the expression computes
--   doc:text(), doc:html(), doc:url(), doc:free()
--   node:css(sel), node:first(sel), node:xpath(expr)   below the node
--   node:text()            -> the text of the node and its descendants
--   node:attr(name)        -> the attribute's value, or nil
--   node:attrs()           -> {name = value}
--   node:html()            -> the node's own markup
--   node:tag()             -> the element name, lower case
--   node:link(name)        -> the attribute as an absolute URL, resolved against the
--                             document's <base href> and url, or nil
--
-- A selector on a node searches below it (jQuery's find; a selector may
-- start with >, + or ~ to mean the node's children or siblings). The
-- translation to XPath is C (engine/base/css.c), the parsing and queries
-- libxml2 (engine/lua/lua_html.c, the module shoal.html_core). A selector
-- or expression that is wrong raises, naming the column; broken markup
-- never does: the parser recovers as browsers do.

local M = {}

-- A mistake in how the script calls shoal.html (a bad selector, a wrong
-- argument) is the script's: runtime.lua leaves its usage error in
-- package.loaded["shoal.usage"], which names the script's line and makes
-- the failure final (no retry would fix it). Without a runtime (the
-- specs), a plain error at level.
local function misuse(msg, level)
  local usage = package.loaded["shoal.usage"]
  if type(usage) == "function" then usage(msg) end
  error(msg, level + 1)
end

local core = require "shoal.html_core"
local url = require "shoal.url"
local c_select, c_css_xpath = core.select, core.css_xpath
local type, error, tostring, lower = type, error, tostring, string.lower

local DOC_AXIS, NODE_AXIS = "descendant-or-self::", "descendant::"

-- Translations already made, per axis: a script asks the same few
-- selectors of every page. Emptied when it grows past CACHE_MAX entries,
-- so a script building selectors from page text cannot grow it forever.
local CACHE_MAX = 512
local cache = { [DOC_AXIS] = {}, [NODE_AXIS] = {} }
local cached = { [DOC_AXIS] = 0, [NODE_AXIS] = 0 }

local function translate(sel, axis, who)
  local x = cache[axis][sel]
  if x then return x end
  if type(sel) ~= "string" then
    misuse("shoal.html: " .. who .. ": the selector must be a string, got " .. type(sel), 3)
  end
  local err
  x, err = c_css_xpath(sel, axis)
  if not x then
    misuse("shoal.html: " .. who .. ": selector " .. string.format("%q", sel) .. ": " .. err, 3)
  end
  if cached[axis] >= CACHE_MAX then
    cache[axis], cached[axis] = {}, 0
  end
  cache[axis][sel], cached[axis] = x, cached[axis] + 1
  return x
end

local function query(target, xpath, who, shown)
  local r, err = c_select(target, xpath)
  if r == nil then
    misuse("shoal.html: " .. who .. " " .. string.format("%q", shown) .. ": " .. err, 3)
  end
  return r
end

local function methods(axis)
  local m = {}
  function m.css(self, sel)
    return query(self, translate(sel, axis, "css"), "css", sel)
  end
  function m.first(self, sel)
    -- (x)[1]: the first in document order of the whole union
    return query(self, "(" .. translate(sel, axis, "first") .. ")[1]", "first", sel)[1]
  end
  function m.xpath(self, expr)
    if type(expr) ~= "string" then
      misuse("shoal.html: xpath: the expression must be a string, got " .. type(expr), 2)
    end
    return query(self, expr, "xpath", expr)
  end
  m.text, m.html, m.url = core.text, core.html, core.url
  return m
end

local Document = methods(DOC_AXIS)
Document.free = core.free

local Node = methods(NODE_AXIS)
Node.tag, Node.attrs = core.tag, core.attrs

function Node.attr(self, name)
  if type(name) ~= "string" then
    misuse("shoal.html: attr: the name must be a string, got " .. type(name), 2)
  end
  return core.attr(self, lower(name))
end

-- The base links resolve against: <base href> (itself resolved against the
-- document's url), else the url parse() was given.
local function base_of(node)
  local doc_url = core.url(node)
  local b = c_select(node, "(/html/head/base[@href])[1]/@href")
  if b and b[1] then
    local abs = url.resolve(doc_url, b[1])
    if abs then return abs end
  end
  return doc_url
end

function Node.link(self, name)
  local v = Node.attr(self, name)
  if not v then return nil end
  v = v:match("^%s*(.-)%s*$")
  return (url.resolve(base_of(self), v))
end

core.document.__index = Document
core.node.__index = Node
core.document.__tostring = function() return "shoal.html document" end
core.node.__tostring = function(n)
  return "shoal.html node <" .. tostring(core.tag(n) or "#document") .. ">"
end

-- parse(body [, url]) -> document. body is a string (a response body);
-- url, when given, is where it came from, for node:link() and doc:url().
function M.parse(body, base_url)
  if type(body) ~= "string" then
    misuse("shoal.html.parse: body must be a string, got " .. type(body), 2)
  end
  if base_url ~= nil and type(base_url) ~= "string" then
    misuse("shoal.html.parse: url must be a string or nil, got " .. type(base_url), 2)
  end
  local doc, err = core.parse(body, base_url)
  if not doc then misuse("shoal.html.parse: " .. err, 2) end
  return doc
end

return M
