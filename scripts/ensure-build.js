// `npm start` on a fresh clone: build once if dist/ is missing or older than src/.
const { existsSync, statSync, readdirSync } = require('node:fs');
const { join } = require('node:path');
const { execSync } = require('node:child_process');

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}
const root = join(__dirname, '..');
const out = join(root, 'dist', 'main.js');
if (!existsSync(out) || statSync(out).mtimeMs < newest(join(root, 'src'))) {
  execSync('npm run build', { cwd: root, stdio: 'inherit' });
}
