/**
 * Can Debian's Chromium be driven through DBSC here? A probe, not a test
 * (docs/sessions.md records its outcome):
 *
 *   node --import tsx test/e2e/dbsc-chromium-probe.ts
 *
 * Starts the service, launches /usr/bin/chromium with the DBSC feature
 * switches, signs in from the page in cookie mode WITHOUT a session_key (so
 * the answer carries Secure-Session-Registration), and for a few seconds
 * listens to the browser's own DevTools DBSC events
 * (Network.enableDeviceBoundSessions: registration attempts and their
 * result, e.g. "SigningKeyGenerationError") and to the requests the service
 * receives. Prints what happened for each set of switches tried.
 */
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { CDPSession } from 'playwright-core';
import { launchChromium, startService } from './helpers.ts';

const PASSWORD = 'Correct-Horse-Battery-9';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ATTEMPTS: Array<{ name: string; args: string[] }> = [
  { name: 'DeviceBoundSessions', args: ['--enable-features=DeviceBoundSessions,DeviceBoundSessionsDevTools'] },
  {
    name: 'DeviceBoundSessions + software keys for manual testing',
    args: ['--enable-features=DeviceBoundSessions,DeviceBoundSessionsDevTools,EnableBoundSessionCredentialsSoftwareKeysForManualTesting,WebAuthenticationUseInsecureSoftwareUnexportableKeys'],
  },
  {
    name: 'all of the above + restricted sites, no deferral bypass',
    args: [
      '--enable-features=DeviceBoundSessions,DeviceBoundSessionsDevTools,EnableBoundSessionCredentialsSoftwareKeysForManualTesting,WebAuthenticationUseInsecureSoftwareUnexportableKeys,DeviceBoundSessionsForRestrictedSites,UseUnexportableKeyServiceInBrowserProcess',
      '--enable-unexportable-keys-for-testing',
      '--use-fake-unexportable-key-provider',
    ],
  },
];

const service = await startService({ LOG_LEVEL: 'info' });
try {
  const plain = await launchChromium();
  console.log(`Chromium ${plain.version()}`);
  await plain.close();
  // A bare server too: the offer on a top-level navigation's answer (not a fetch), and any request to its registration path logged.
  const bareHits: string[] = [];
  const bare = createServer((req, res) => {
    bareHits.push(`${req.method} ${req.url} secure-session-response=${req.headers['secure-session-response'] ? 'yes' : 'no'}`);
    if (req.url === '/') res.setHeader('secure-session-registration', '(ES256 RS256);path="/reg";challenge="probe-challenge"');
    res.setHeader('content-type', 'text/html');
    res.end('<!doctype html><title>probe</title>');
  });
  bare.listen(0, '127.0.0.1');
  await once(bare, 'listening');
  const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/`;
  for (const attempt of ATTEMPTS) {
    const browser = await launchChromium(attempt.args);
    try {
      const page = await browser.newPage();
      const cdp: CDPSession = await page.context().newCDPSession(page);
      const events: string[] = [];
      cdp.on('Network.deviceBoundSessionEventOccurred' as any, (e: any) => events.push(`event: ${JSON.stringify(e).slice(0, 400)}`));
      cdp.on('Network.deviceBoundSessionsAdded' as any, (e: any) => events.push(`sessions added: ${JSON.stringify(e).slice(0, 400)}`));
      await cdp.send('Network.enable');
      const enabled = await cdp.send('Network.enableDeviceBoundSessions' as any, { enable: true }).then(
        () => 'ok',
        (error: unknown) => `refused: ${String(error).split('\n')[0]}`,
      );
      const requests: string[] = [];
      page.on('request', (r) => requests.push(`${r.method()} ${new URL(r.url()).pathname}`));
      await page.goto(`${service.baseUrl}/#/login`);
      const email = `probe-${Date.now()}@example.com`;
      const answer = await page.evaluate(
        async ({ email, password }) => {
          await fetch('/api/v1/auth/signup', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) });
          const res = await fetch('/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json', 'x-refresh-cookie': '1' }, body: JSON.stringify({ email, password }) });
          const body = await res.json();
          return { status: res.status, offer: res.headers.get('secure-session-registration'), token: body.data.access_token as string };
        },
        { email, password: PASSWORD },
      );
      await page.goto(bareUrl);
      await sleep(5_000);
      await page.goto(`${service.baseUrl}/#/login`);
      const sessions = await page.evaluate(async (token) => (await (await fetch('/api/v1/sessions', { headers: { authorization: `Bearer ${token}` } })).json()).data.sessions, answer.token);
      const bound = sessions.map((s: any) => `${s.bound}/${s.binding}`).join(',');
      const registerHits = service.output().split('\n').filter((line) => line.includes('/dbsc/register')).length;
      console.log(`\n== ${attempt.name}\n   switches: ${attempt.args.join(' ')}\n   Network.enableDeviceBoundSessions: ${enabled}`);
      console.log(`   login ${answer.status}, offer: ${answer.offer}`);
      console.log(`   session after 5 s: bound/binding = ${bound}; /dbsc/register requests seen by the service: ${registerHits}`);
      console.log(`   page requests to the API and the bare server: ${requests.filter((r) => r.includes('/api/') || r.includes('/reg') || r.endsWith(' /')).join(', ')}`);
      console.log(`   bare server (offer on a navigation): ${bareHits.splice(0).join('; ')}`);
      console.log(`   DevTools DBSC events (${events.length}):${events.map((e) => `\n     ${e}`).join('')}`);
    } finally {
      await browser.close();
    }
  }
  bare.close();
} finally {
  await service.stop();
}
