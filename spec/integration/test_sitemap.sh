#!/usr/bin/env bash
# test_sitemap.sh - crawl.sitemap and examples/sitemap.lua against nginx:
# robots.txt names a sitemap index, the index two urlsets, one of them
# gzip'd; every page listed is fetched once, with its lastmod in its item.
# Broken sitemaps are warnings, never a crash.
. "$(dirname "$0")/lib.sh"
RUN_LIMIT=60

SITE=$T/site
mkdir -p "$SITE/pages"
start_nginx "$SITE" || { fail "nginx starts"; finish; }
B=http://127.0.0.1:$NGINX_PORT
for i in $(seq 1 30); do echo "<title>Page $i</title>" >"$SITE/pages/p$i.html"; done
printf 'User-agent: *\nAllow: /\nSitemap: %s/maps/index.xml\n' "$B" >"$SITE/robots.txt"
mkdir -p "$SITE/maps"
cat >"$SITE/maps/index.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>$B/maps/a.xml</loc></sitemap>
  <sitemap><loc>$B/maps/b.xml.gz</loc><lastmod>2026-01-01</lastmod></sitemap>
  <sitemap><loc>$B/maps/missing.xml</loc></sitemap>
</sitemapindex>
EOF
{
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
    for i in $(seq 1 15); do
        echo "<url><loc> $B/pages/p$i.html </loc><lastmod>2026-02-$(printf %02d "$i")</lastmod></url>"
    done
    echo '</urlset>'
} >"$SITE/maps/a.xml"
{
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
    for i in $(seq 16 30); do echo "<url><loc>$B/pages/p$i.html</loc></url>"; done
    echo "<url><loc>$B/pages/p1.html</loc></url>" # listed twice: fetched once
    echo '</urlset>'
} | gzip -c >"$SITE/maps/b.xml.gz"

run_shoal map run "$SHOAL_ROOT/examples/sitemap.lua" --workers 2 --listen off --quiet \
    --output "$T/items.jsonl" -- "$B/"
expect_rc "the sitemap crawl: exit 0" 0
expect_eq "every page listed, once" "$(jq -r .url "$T/items.jsonl" | sort | uniq | wc -l) $(wc -l <"$T/items.jsonl")" "30 30"
expect_eq "each fetched once" "$(grep -c ' /pages/' "$NGINX_LOG")" 30
expect_eq "lastmod from the plain urlset" \
    "$(jq -r "select(.url == \"$B/pages/p3.html\") | .lastmod" "$T/items.jsonl")" "2026-02-03"
expect_eq "titles" "$(jq -r "select(.url == \"$B/pages/p20.html\") | .title" "$T/items.jsonl")" \
    "Page 20"
expect_grep "a sitemap that cannot be had is a warning naming it" \
    'sitemap could not be had.*missing\.xml' "$ERR"

# -- broken sitemaps: not XML, a wrong root, gzip cut short
printf 'not xml at all <<<' >"$SITE/maps/bad.xml"
printf '<?xml version="1.0"?><rss><url><loc>x</loc></url></rss>' >"$SITE/maps/rss.xml"
head -c 40 "$SITE/maps/b.xml.gz" >"$SITE/maps/cut.xml.gz"
for m in bad.xml rss.xml cut.xml.gz; do
    run_shoal "bad_$m" run "$SHOAL_ROOT/examples/sitemap.lua" --workers 1 --listen off --quiet \
        --output "$T/bad.jsonl" -- "$B/" "$B/maps/$m"
    expect_rc "$m: exit 0, nothing to fetch" 0
    expect_grep "$m: a warning says why" 'sitemap could not be read' "$ERR"
done

finish
