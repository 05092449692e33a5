---@meta shoal.html
-- Type annotations of `shoal.html` (lua/shoal/html.lua; also
-- `require "shoal.html"`) for lua-language-server. Never run. A selector or
-- expression that is wrong raises, naming its column; broken markup never
-- does.

---The module `shoal.html`.
---@class shoal.html
local html = {}

---Parses an HTML body with libxml2's HTML parser (as lxml does), recovering from broken markup as
---browsers do; an empty body is an empty document. The tree is freed when the document and all its
---nodes are garbage, or by `doc:free()`.
---@param body string the page, e.g. `res.body`, in its `<meta charset>` or UTF-8
---@param url? string where the page came from, for `doc:url()` and `node:link`
---@return shoal.html.Document
function html.parse(body, url) end

---A parsed page.
---@class shoal.html.Document
local Document = {}

---The elements the CSS selector matches, in document order. Supported: tag, *, #id, .class, [a],
---[a=v], [a~=v], [a|=v], [a^=v], [a$=v], [a*=v], descendant, >, +, ~, selector lists, :first-child,
---:last-child, :only-child, :first-of-type, :last-of-type, :only-of-type, :nth-child(),
---:nth-last-child(), :nth-of-type(), :nth-last-of-type(), :not(), :empty, :root, :contains().
---@param selector string
---@return shoal.html.Node[]
function Document:css(selector) end

---The first element the CSS selector matches, or nil.
---@param selector string
---@return shoal.html.Node?
function Document:first(selector) end

---Evaluates an XPath 1.0 expression: a node-set as an array (elements as nodes; attributes, text
---and comments as strings), or the number, string or boolean it computes.
---@param expr string
---@return (shoal.html.Node|string)[]|number|string|boolean
function Document:xpath(expr) end

---All the text of the page (script and style contents included).
---@return string
function Document:text() end

---The page serialised as HTML.
---@return string
function Document:html() end

---The url given to `shoal.html.parse`, or nil.
---@return string?
function Document:url() end

---Frees the tree now instead of at garbage collection; the document and its nodes raise from then
---on.
function Document:free() end

---An element (or the document node an XPath such as "/" selects).
---@class shoal.html.Node
local Node = {}

---The elements below this node the CSS selector matches (a selector may start with >, + or ~: the
---node's children, next sibling, later siblings).
---@param selector string
---@return shoal.html.Node[]
function Node:css(selector) end

---The first element below this node the CSS selector matches, or nil.
---@param selector string
---@return shoal.html.Node?
function Node:first(selector) end

---Evaluates an XPath 1.0 expression with this node as the context node (".//a" searches below it).
---@param expr string
---@return (shoal.html.Node|string)[]|number|string|boolean
function Node:xpath(expr) end

---The text of the node and all its descendants, entities decoded.
---@return string
function Node:text() end

---The node's own markup (outer HTML).
---@return string
function Node:html() end

---The element name, lower case.
---@return string?
function Node:tag() end

---An attribute's value ("" for one written without a value), or nil when absent; the name is
---case-blind.
---@param name string
---@return string?
function Node:attr(name) end

---All the attributes, name = value.
---@return table<string, string>
function Node:attrs() end

---An attribute as an absolute URL, resolved against the page's `<base href>` and the url given to
---parse; nil when absent or when it does not resolve.
---@param name string e.g. "href", "src"
---@return string?
function Node:link(name) end

---The url given to `shoal.html.parse`, or nil.
---@return string?
function Node:url() end
