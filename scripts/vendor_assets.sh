#!/usr/bin/env bash
# Copy the front-end libraries the web UI needs from the npm registry into
# yifang/web/static/vendor/, so the app serves them itself: the users' intranet has no
# internet and pages must not load anything from a CDN. The copied files are committed;
# run this only to upgrade them (versions are locked in package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --ignore-scripts
dest=yifang/web/static/vendor
mkdir -p "$dest"
cp node_modules/echarts/dist/echarts.min.js "$dest/echarts.min.js"
cp node_modules/echarts/LICENSE "$dest/echarts.LICENSE.txt"
version="$(node -p "require('./node_modules/echarts/package.json').version")"
echo "echarts $version" > "$dest/VERSIONS.txt"
ls -l "$dest"
