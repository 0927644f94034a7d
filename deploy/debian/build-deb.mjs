#!/usr/bin/env node
/**
 * `npm run package:deb`: builds dist-deb/vigil_<version>-1_<arch>.deb with dpkg-deb.
 *
 *   /usr/lib/vigil/            dist/, bin/, checks/, the production node_modules, package.json
 *   /usr/lib/vigil/runtime/node   the Node runtime this package was built with (see below)
 *   /usr/bin/vigil             sh wrapper: exec that runtime on /usr/lib/vigil/dist/cli.js
 *   /etc/vigil/vigil.yaml      the config (a conffile: dpkg keeps the operator's edits)
 *   /lib/systemd/system/vigil.service, /usr/lib/modules-load.d/vigil.conf
 *   /usr/share/doc/vigil/      README.md, CHANGELOG.md, copyright
 *   postinst                   the "vigil" system user and group, /etc/vigil owned root:vigil
 *
 * Node: Debian 12's own nodejs is 18, below vigil's floor (>= 20.5.0, execa's), and
 * Debian has no newer one. Depending on NodeSource's "nodejs" would make the package
 * uninstallable on a plain Debian director, so the runtime travels inside it (about
 * 100 MB): the node binary that runs this script, which links only libc, libm, libstdc++
 * and libgcc_s (the package depends on those). Security updates of Node then come with
 * a rebuilt vigil package; that is the price, and it is said in the README.
 *
 * Usage: node deploy/debian/build-deb.mjs [--out DIR]   (dist/ must be built)
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const outArg = process.argv.indexOf('--out');
const OUT = outArg > 0 ? resolve(process.argv[outArg + 1]) : join(ROOT, 'dist-deb');

function fail(msg) {
  process.stderr.write(`build-deb: ${msg}\n`);
  process.exit(1);
}
if (!existsSync(join(ROOT, 'dist', 'cli.js'))) fail('dist/cli.js is missing: run npm run build first');
const nodeMajor = Number(process.versions.node.split('.')[0]);
if (nodeMajor < 20) fail(`this Node (${process.version}) is below vigil's floor; build with Node >= 20.5`);

const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
const version = `${pkg.version}-1`;
const stage = mkdtempSync(join(tmpdir(), 'vigil-deb-'));
const at = (p) => join(stage, p);
const put = (p, text, mode = 0o644) => {
  mkdirSync(dirname(at(p)), { recursive: true });
  writeFileSync(at(p), text);
  chmodSync(at(p), mode);
};

try {
  // ---- the application
  const lib = 'usr/lib/vigil';
  for (const d of ['dist', 'bin', 'checks']) cpSync(join(ROOT, d), at(`${lib}/${d}`), { recursive: true, filter: (src) => !src.endsWith('.deb') && !src.endsWith('.map') });
  cpSync(join(ROOT, 'package.json'), at(`${lib}/package.json`));
  // production dependencies only: the lockfile's entries not marked dev, copied from node_modules
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
  let modules = 0;
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev || entry.devOptional || !path.startsWith('node_modules/')) continue;
    const src = join(ROOT, path);
    if (!existsSync(src)) fail(`${path} (a production dependency) is not installed: run npm ci`);
    // nested entries are copied with their parent; copying them again is harmless
    cpSync(src, at(`${lib}/${path}`), { recursive: true, filter: (s) => !/\/node_modules\/[^/]+\/node_modules$/.test(s) || s === src });
    modules += 1;
  }
  // ---- the runtime
  cpSync(process.execPath, at(`${lib}/runtime/node`));
  chmodSync(at(`${lib}/runtime/node`), 0o755);
  put('usr/bin/vigil', `#!/bin/sh\n# vigil with the Node runtime shipped in /usr/lib/vigil/runtime (Debian 12's nodejs is 18)\nexec /usr/lib/vigil/runtime/node /usr/lib/vigil/dist/cli.js "$@"\n`, 0o755);

  // ---- config, unit, docs
  put('etc/vigil/vigil.yaml', readFileSync(join(ROOT, 'config', 'vigil.yaml'), 'utf8'), 0o640);
  cpSync(join(ROOT, 'config', 'examples'), at('usr/share/doc/vigil/examples'), { recursive: true });
  put('lib/systemd/system/vigil.service', readFileSync(join(ROOT, 'deploy', 'vigil.service'), 'utf8'));
  put('usr/lib/modules-load.d/vigil.conf', readFileSync(join(ROOT, 'deploy', 'modules-load-vigil.conf'), 'utf8'));
  put('usr/share/doc/vigil/README.md', readFileSync(join(ROOT, 'README.md'), 'utf8'));
  put('usr/share/doc/vigil/CHANGELOG.md', readFileSync(join(ROOT, 'CHANGELOG.md'), 'utf8'));
  put('usr/share/doc/vigil/copyright', `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: vigil\n\nFiles: *\nCopyright: vigil developers\nLicense: MIT\n\n${readFileSync(join(ROOT, 'LICENSE'), 'utf8')}\nFiles: usr/lib/vigil/runtime/node\nCopyright: Node.js contributors\nLicense: MIT (see https://github.com/nodejs/node/blob/main/LICENSE)\n`);

  // ---- maintainer scripts
  put('DEBIAN/conffiles', '/etc/vigil/vigil.yaml\n');
  put(
    'DEBIAN/postinst',
    `#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent group vigil >/dev/null; then groupadd --system vigil; fi
  if ! getent passwd vigil >/dev/null; then
    useradd --system --gid vigil --home-dir /var/lib/vigil --no-create-home --shell /usr/sbin/nologin --comment "vigil LVS director controller" vigil
  fi
  # the config may hold paths to keys and tokens: readable by vigil, not by everyone
  chown root:vigil /etc/vigil /etc/vigil/vigil.yaml
  chmod 0750 /etc/vigil
  chmod 0640 /etc/vigil/vigil.yaml
fi
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null || true
  # not enabled or started here: a director needs its own config first
  # (systemctl enable --now vigil)
fi
exit 0
`,
    0o755,
  );
  put(
    'DEBIAN/postrm',
    `#!/bin/sh
set -e
if [ "$1" = purge ]; then
  rm -rf /var/lib/vigil
  if getent passwd vigil >/dev/null; then userdel vigil >/dev/null 2>&1 || true; fi
  if getent group vigil >/dev/null; then groupdel vigil >/dev/null 2>&1 || true; fi
fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null || true; fi
exit 0
`,
    0o755,
  );
  put(
    'DEBIAN/prerm',
    `#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then systemctl stop vigil.service >/dev/null 2>&1 || true; fi
exit 0
`,
    0o755,
  );
  const sizeKb = Number(execFileSync('du', ['-sk', '--exclude=DEBIAN', stage], { encoding: 'utf8' }).split('\t')[0]);
  put(
    'DEBIAN/control',
    `Package: vigil
Version: ${version}
Architecture: ${arch}
Maintainer: vigil developers <vigil@invalid>
Installed-Size: ${sizeKb}
Depends: libc6 (>= 2.28), libstdc++6, libgcc-s1, iproute2, passwd
Recommends: ipvsadm, arping, nftables
Suggests: prometheus
Conflicts: heartbeat, keepalived, ldirectord
Section: net
Priority: optional
Homepage: https://vigil.invalid/
Description: high-availability controller for Linux LVS directors
 ${pkg.description}.
 .
 Ships its own Node.js runtime (${process.version}) in /usr/lib/vigil/runtime,
 because Debian 12's nodejs (18) is older than vigil needs.
`,
  );
  mkdirSync(OUT, { recursive: true });
  const deb = join(OUT, `vigil_${version}_${arch}.deb`);
  // gzip level 1: a 100 MB runtime compresses slowly with xz; any dpkg reads gzip
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '-z1', '--build', stage, deb], { stdio: ['ignore', 'ignore', 'inherit'] });
  process.stdout.write(`${deb} (${Math.round(statSync(deb).size / 1e6)} MB, ${modules} modules, Node ${process.version})\n`);
} finally {
  rmSync(stage, { recursive: true, force: true });
}
