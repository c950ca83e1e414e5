// Stands in for tsx inside the stock-kernel guest (see package.json): registers hooks that map
// each TypeScript entry the tests spawn with `node --import tsx` to its bundle, built on the host
// by test/stock-kernel/prepare.mjs from the same sources (esbuild, as tsx would transform them).
import { readFileSync } from 'node:fs';
import { register } from 'node:module';

const mapFile = process.env.PMI_STOCK_TSX_MAP;
if (!mapFile) throw new Error('stock-kernel tsx stub: PMI_STOCK_TSX_MAP is not set (this stub is only for the stock-kernel guest)');
register('./hooks.mjs', import.meta.url, { data: { map: JSON.parse(readFileSync(mapFile, 'utf8')) } });
