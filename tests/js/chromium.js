// chromium.js - start headless Chromium with the DevTools protocol on a pipe,
// and clean up after it, for the browser tests (tests/tls/browser.js,
// tests/js/status_browser.js).
//
//   const { launch } = require('.../tests/js/chromium.js');
//   const b = launch(CHROMIUM, WORK_DIR, TIMEOUT_MS);
//   await b.send('Target.createTarget', { url });   // DevTools commands
//   b.onEvent((msg) => ...);                         // DevTools events
//   b.finish('PASS', 0);                             // verdict, clean up, exit
//
// WORK_DIR is a fresh folder of the caller's: the profile goes to
// WORK_DIR/profile (--user-data-dir) and, through XDG_CONFIG_HOME, the crash
// handler's database to WORK_DIR/config, so nothing is written to $HOME.
// Chromium runs headless in a process group of its own, with the DevTools
// protocol on a pipe (--remote-debugging-pipe: commands on its fd 3, answers
// on its fd 4, each JSON message ended by a NUL byte).
//
// Output: "browser pgid N" first, then, from finish(), "result TEXT", then
// "stray N": browser processes outside the group (crash handlers) killed by
// pid, then "leftover N": browser processes still alive after the clean-up.
// The process exits with finish()'s code, or 1 when anything was left over.
// After TIMEOUT_MS, finish('TIMEOUT', 1) is called; on SIGTERM,
// finish('FAIL: terminated', 1).
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

function launch(chromium, workArg, timeoutMs) {
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

  let finished = false;
  let deadline = null;
  function finish(result, code) {
    if (finished) {
      return;
    }
    finished = true;
    clearTimeout(deadline);
    console.log(`result ${result}`);
    if (code !== 0 && stderrTail) {
      console.log(`chromium stderr (tail):\n${stderrTail}`);
    }
    send('Browser.close').catch(() => {});
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

  deadline = setTimeout(() => finish('TIMEOUT', 1), timeoutMs);
  // A caller giving up (SIGTERM) still gets the browser cleaned up.
  process.on('SIGTERM', () => finish('FAIL: terminated', 1));
  child.on('exit', (code, sig) => {
    if (!finished) {
      finish(`FAIL: chromium exited (${code === null ? sig : code})`, 1);
    }
  });
  child.on('error', (e) => finish(`FAIL: cannot start chromium: ${e.message}`,
    1));

  const toBrowser = child.stdio[3];
  const fromBrowser = child.stdio[4];
  let nextId = 1;
  const waiting = new Map();
  const listeners = [];
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
      } else if (msg.method) {
        for (const fn of listeners) {
          fn(msg);
        }
      }
    }
  });
  toBrowser.on('error', () => {});

  return { send, finish, onEvent: (fn) => listeners.push(fn) };
}

module.exports = { launch };
