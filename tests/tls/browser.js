// browser.js - drive headless Chromium through page.html for tls_test.c.
//
//   node browser.js CHROMIUM PAGE_URL WORK_DIR [TIMEOUT_MS]
//
// WORK_DIR is a fresh folder of the caller's: the profile goes to
// WORK_DIR/profile (--user-data-dir) and, through XDG_CONFIG_HOME, the crash
// handler's database to WORK_DIR/config, so nothing is written to $HOME.
// Starts CHROMIUM headless in a process group of its own, with the DevTools
// protocol on a pipe (--remote-debugging-pipe: commands on its fd 3, answers
// on its fd 4, each JSON message ended by a NUL byte). It opens PAGE_URL in a
// new target and polls `#result` with Runtime.evaluate every 100 ms, in real
// time, until the page has written its verdict ("PASS" or "FAIL: ...") or
// TIMEOUT_MS (default 30000) passes. --dump-dom with --virtual-time-budget
// is not used: virtual time runs the page's timers ahead of the network, so
// the page's own watchdog fired before the WebSocket round trips ended.
//
// Output: "browser pgid N" first, then "result TEXT" (or "result TIMEOUT"),
// then "stray N": browser processes outside the group (crash handlers)
// killed by pid, then "leftover N": browser processes still alive after the
// clean-up.
// Exit status 0 only for "result PASS" with "leftover 0".
//
// Clean-up, on every way out (after Browser.close had a chance): SIGKILL to
// the browser's process group (browser, zygotes, renderers, utilities), and
// to chrome_crashpad_handler, which detaches into a session of its own: it
// is found by "=WORK_DIR/" in its command line (/proc/PID/cmdline: its
// --database=WORK_DIR/config/..., the others' --user-data-dir=...), which
// only browser processes of this run contain (not the caller's shell, whose
// command line holds WORK_DIR as an argument of its own).
'use strict';
const { spawn } = require('child_process');

const fs = require('fs');
const path = require('path');

const [chromium, pageUrl, workArg] = process.argv.slice(2, 5);
const timeoutMs = Number(process.argv[5] || 30000);
if (!chromium || !pageUrl || !workArg) {
  console.log('usage: browser.js CHROMIUM PAGE_URL WORK_DIR [TIMEOUT_MS]');
  process.exit(2);
}
const workDir = path.resolve(workArg);
fs.mkdirSync(path.join(workDir, 'config'), { recursive: true });

const child = spawn(chromium, [
  '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--disable-quic', '--ignore-certificate-errors',
  '--disable-dev-shm-usage', '--remote-debugging-pipe',
  `--user-data-dir=${path.join(workDir, 'profile')}`, 'about:blank',
], {
  detached: true,
  stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
  env: { ...process.env, XDG_CONFIG_HOME: path.join(workDir, 'config') },
});
console.log(`browser pgid ${child.pid}`);

let stderrTail = '';
child.stderr.on('data', (d) => {
  stderrTail = (stderrTail + d.toString()).slice(-2000);
});

let finished = false;
function finish(result, code) {
  if (finished) {
    return;
  }
  finished = true;
  console.log(`result ${result}`);
  if (code !== 0 && stderrTail) {
    console.log(`chromium stderr (tail):\n${stderrTail}`);
  }
  // Give Browser.close a moment, then make sure.
  setTimeout(() => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch (e) {
      // ESRCH: the group is gone already.
    }
    let left = ours();
    console.log(`stray ${left.length}`);
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (e) {
        // gone meanwhile
      }
    }
    const until = Date.now() + 3000;
    const wait = () => {
      left = ours();
      if (left.length > 0 && Date.now() < until) {
        setTimeout(wait, 50);
        return;
      }
      console.log(`leftover ${left.length}`);
      process.exit(left.length === 0 ? code : 1);
    };
    wait();
  }, 300);
}

// Live (not zombie) processes with "=workDir/" in their command line.
function ours() {
  const found = [];
  const mark = `=${workDir}/`;
  for (const name of fs.readdirSync('/proc')) {
    const pid = Number(name);
    if (!/^[0-9]+$/.test(name) || pid === process.pid ||
        pid === process.ppid) {
      continue;
    }
    try {
      const cmd = fs.readFileSync(`/proc/${name}/cmdline`).toString();
      const stat = fs.readFileSync(`/proc/${name}/stat`).toString();
      const state = stat.slice(stat.lastIndexOf(')') + 2)[0];
      if (cmd.includes(mark) && state !== 'Z') {
        found.push(Number(name));
      }
    } catch (e) {
      // exited while we looked
    }
  }
  return found;
}

const deadline = setTimeout(() => finish('TIMEOUT', 1), timeoutMs);
child.on('exit', (code, sig) => {
  if (!finished) {
    clearTimeout(deadline);
    finish(`FAIL: chromium exited (${code === null ? sig : code})`, 1);
  }
});
child.on('error', (e) => finish(`FAIL: cannot start chromium: ${e.message}`,
  1));

const toBrowser = child.stdio[3];
const fromBrowser = child.stdio[4];
let nextId = 1;
const waiting = new Map();
function send(method, params, sessionId) {
  const id = nextId++;
  const msg = { id, method, params: params || {} };
  if (sessionId) {
    msg.sessionId = sessionId;
  }
  toBrowser.write(JSON.stringify(msg) + '\0');
  return new Promise((resolve, reject) => waiting.set(id, { resolve, reject }));
}

let pending = Buffer.alloc(0);
fromBrowser.on('data', (d) => {
  pending = Buffer.concat([pending, d]);
  let end;
  while ((end = pending.indexOf(0)) >= 0) {
    const msg = JSON.parse(pending.subarray(0, end).toString());
    pending = pending.subarray(end + 1);
    const w = msg.id !== undefined ? waiting.get(msg.id) : undefined;
    if (w) {
      waiting.delete(msg.id);
      if (msg.error) {
        w.reject(new Error(msg.error.message));
      } else {
        w.resolve(msg.result);
      }
    }
  }
});
toBrowser.on('error', () => {});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

(async () => {
  const { targetId } = await send('Target.createTarget', { url: pageUrl });
  const { sessionId } = await send('Target.attachToTarget',
    { targetId, flatten: true });
  const expr = "(document.getElementById('result') || {}).textContent || ''";
  for (;;) {
    const r = await send('Runtime.evaluate',
      { expression: expr, returnByValue: true }, sessionId);
    const text = r && r.result ? String(r.result.value) : '';
    if (text !== '' && text !== 'RUNNING') {
      clearTimeout(deadline);
      send('Browser.close').catch(() => {});
      finish(text, text === 'PASS' ? 0 : 1);
      return;
    }
    await sleep(100);
  }
})().catch((e) => {
  clearTimeout(deadline);
  finish(`FAIL: devtools: ${e.message}`, 1);
});
