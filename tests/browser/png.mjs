// A small PNG decoder (8-bit RGB / RGBA, not interlaced: what Chromium's
// screenshots are) and pixel statistics to tell a rendered page from a
// blank one. node:zlib only.
import zlib from 'node:zlib';

const SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

// Decodes buf; returns {width, height, channels, data} (data: rows of
// width x channels bytes) or throws with what it cannot read.
export function decodePng(buf) {
  if (buf.length < 8 || !buf.subarray(0, 8).equals(SIG)) throw new Error('not a PNG (bad signature)');
  let off = 8, width = 0, height = 0, depth = 0, ctype = 0, interlace = 0;
  const idat = [];
  for (;;) {
    if (off + 12 > buf.length) throw new Error('truncated PNG (no IEND)');
    const len = buf.readUInt32BE(off), type = buf.toString('latin1', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    off += 12 + len;
    if (type === 'IHDR') {
      width = data.readUInt32BE(0); height = data.readUInt32BE(4);
      depth = data[8]; ctype = data[9]; interlace = data[12];
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
  }
  if (!width || !height) throw new Error('PNG without IHDR');
  if (depth !== 8 || (ctype !== 2 && ctype !== 6) || interlace !== 0)
    throw new Error(`unsupported PNG: depth ${depth}, colour type ${ctype}, interlace ${interlace}`);
  const ch = ctype === 6 ? 4 : 3, stride = width * ch;
  const raw = zlib.inflateSync(Buffer.concat(idat));
  if (raw.length < height * (stride + 1)) throw new Error(`PNG data too short: ${raw.length} bytes`);
  const out = Buffer.alloc(height * stride);
  const zero = Buffer.alloc(stride);
  for (let y = 0; y < height; y++) {
    const ft = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const cur = out.subarray(y * stride, (y + 1) * stride);
    const prev = y ? out.subarray((y - 1) * stride, y * stride) : zero;
    for (let x = 0; x < stride; x++) {
      const a = x >= ch ? cur[x - ch] : 0, b = prev[x], c = x >= ch ? prev[x - ch] : 0;
      let v = src[x];
      switch (ft) {
        case 0: break;
        case 1: v += a; break;
        case 2: v += b; break;
        case 3: v += (a + b) >> 1; break;
        case 4: {
          const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default: throw new Error(`bad PNG filter ${ft} on row ${y}`);
      }
      cur[x] = v & 255;
    }
  }
  return { width, height, channels: ch, data: out };
}

// {pixels, background (0xRRGGBB, the most common colour), nonBackground
// (share of pixels of another colour), distinct (colours), coloured (share
// of pixels whose channels differ by more than 60: not grey)}.
export function pixelStats(img) {
  const n = img.width * img.height, ch = img.channels, d = img.data;
  const counts = new Map();
  let coloured = 0;
  for (let i = 0; i < n; i++) {
    const r = d[i * ch], g = d[i * ch + 1], b = d[i * ch + 2];
    const k = (r << 16) | (g << 8) | b;
    counts.set(k, (counts.get(k) || 0) + 1);
    if (Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;
  }
  let bg = 0, bgn = -1;
  for (const [k, c] of counts) if (c > bgn) { bg = k; bgn = c; }
  return { pixels: n, background: bg, nonBackground: 1 - bgn / n, distinct: counts.size, coloured: coloured / n };
}
