// Shared by the browser tests: a real `drago server -dev` built from this
// repository, and Debian's chromium driven by playwright-core.

import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { readFileSync, existsSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** until polls fn until it returns a truthy value, which it returns; detail adds to a timeout's message. */
export async function until(what, fn, { ms = 20000, every = 100, detail = () => '' } = {}) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(every);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}${detail()}`);
}

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** dragoBinary returns DRAGO_BIN, or builds drago into dir. */
export function dragoBinary(dir) {
  if (process.env.DRAGO_BIN) return process.env.DRAGO_BIN;
  const bin = join(dir, 'drago');
  execFileSync('go', ['build', '-o', bin, './cmd/drago'], { cwd: repo, stdio: 'inherit', env: { ...process.env, CGO_ENABLED: '0' } });
  return bin;
}

/**
 * startServer runs `drago server -dev` on a free loopback port (or at
 * listen, host:port) with its data in dataDir and extra args, and waits for
 * it to answer. It returns the process, the base URL, the root token and
 * the output so far (out()). A server joining a store another server
 * created prints no root token: pass the one known as token.
 */
export async function startServer(bin, dataDir, args = [], listen, token) {
  listen = listen ?? `127.0.0.1:${await freePort()}`;
  const base = `http://${listen}`;
  let out = '';
  const proc = spawn(bin, ['server', '-dev', '-addr', listen, '-data-dir', dataDir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  proc.on('exit', (code) => (out += `\n[drago exited with ${code}]`));
  const detail = () => `\nserver output:\n${out}`;
  await until('the server to answer /api/v1/health', async () => (await fetch(`${base}/api/v1/health`)).ok, { detail });
  // -dev prints the root token; it is also in <data-dir>/root-token.
  token ??= await until(
    'the root token',
    () => {
      const m = /Root token: (\S+)/.exec(out);
      if (m) return m[1];
      const f = join(dataDir, 'root-token');
      return existsSync(f) && readFileSync(f, 'utf8').trim();
    },
    { detail },
  );
  return { proc, base, token, out: () => out };
}

/** stopServer ends a server startServer started. */
export async function stopServer(proc) {
  if (!proc || proc.exitCode !== null) return;
  proc.kill('SIGTERM');
  await Promise.race([new Promise((r) => proc.once('exit', r)), sleep(5000)]);
  if (proc.exitCode === null) proc.kill('SIGKILL');
}

/** launchBrowser starts headless chromium with a fresh profile in dir and returns its context. */
export function launchBrowser(dir) {
  return chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1440, height: 900 },
    deviceScaleFactor: 1,
  });
}
