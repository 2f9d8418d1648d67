// axe-core's accessibility rules run against a page as headless Chromium renders it.
//
//   node --experimental-websocket tests/services/public/a11y/axe.mjs <chromium> <url> <profile dir>
//
// The page keeps its own Content-Security-Policy (no script may load), so axe is not put in
// the page: Chromium is driven over the DevTools protocol, which evaluates axe's source in
// the page like a developer console, outside the CSP. Prints axe's violations as JSON (an
// empty list when the page passes); exits non-zero if the page cannot be checked at all.
// axe-core is installed by `make a11y-deps` under .tools/a11y (pinned by package-lock.json).

import { spawn } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const [chromium, url, profile] = process.argv.slice(2);
const AXE = new URL('../../../../.tools/a11y/node_modules/axe-core/axe.min.js', import.meta.url);
const axeSource = readFileSync(AXE, 'utf8');

const browser = spawn(chromium, [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
  '--remote-debugging-port=0', `--user-data-dir=${profile}`, '--window-size=412,915',
  'about:blank',
], { stdio: 'ignore' });

async function devtoolsPort() {
  const file = `${profile}/DevToolsActivePort`;
  for (let i = 0; i < 300; i += 1) {
    if (existsSync(file)) {
      const [port] = readFileSync(file, 'utf8').split('\n');
      if (port) return port;
    }
    await sleep(100);
  }
  throw new Error('Chromium did not open its DevTools port');
}

try {
  const port = await devtoolsPort();
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const page = targets.find((t) => t.type === 'page');
  const socket = new WebSocket(page.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  let next = 0;
  const pending = new Map();
  const waiters = [];
  socket.onmessage = ({ data }) => {
    const message = JSON.parse(data);
    if (message.id !== undefined && pending.has(message.id)) {
      const { resolve, reject } = pending.get(message.id);
      pending.delete(message.id);
      if (message.error) reject(new Error(JSON.stringify(message.error)));
      else resolve(message.result);
    } else if (message.method) {
      for (const waiter of waiters.filter((w) => w.method === message.method)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(message.params);
      }
    }
  };
  const send = (method, params = {}) =>
    new Promise((resolve, reject) => {
      next += 1;
      pending.set(next, { resolve, reject });
      socket.send(JSON.stringify({ id: next, method, params }));
    });
  const event = (method) => new Promise((resolve) => waiters.push({ method, resolve }));

  await send('Page.enable');
  const loaded = event('Page.loadEventFired');
  await send('Page.navigate', { url });
  await loaded;
  const evaluate = async (expression) => {
    const { result, exceptionDetails } = await send('Runtime.evaluate', {
      expression, awaitPromise: true, returnByValue: true,
    });
    if (exceptionDetails) throw new Error(JSON.stringify(exceptionDetails));
    return result.value;
  };
  await evaluate(axeSource);
  const violations = await evaluate(`axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    }).then((r) => ({ violations: r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => n.target.join(' ')),
    })), passes: r.passes.length }))`);
  process.stdout.write(`${JSON.stringify(violations)}\n`);
  socket.close();
} finally {
  browser.kill();
}
