// Languages: init's lang picks the UI language; every string is translated.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './harness.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env.teardown(); });

const EXPECT = {
  'zh-CN': { title: '坐席登录', button: '登录', wrong: '邮箱或密码错误。', status: '示闲', signOut: '退出登录' },
  'en-US': { title: 'Agent sign-in', button: 'Sign in', wrong: 'Wrong email or password.', status: 'Available', signOut: 'Sign out' },
  'es-MX': { title: 'Acceso de agente', button: 'Iniciar sesión', wrong: 'Correo o contraseña incorrectos.', status: 'Disponible', signOut: 'Cerrar sesión' },
};

for (const [lang, want] of Object.entries(EXPECT)) {
  test(`lang ${lang}: sign-in page, its error and the signed-in screen are in ${lang}`, async () => {
    const tab = await env.open();
    await tab.send({ type: 'init', content: { lang } });
    const title = tab.frame.locator('h1');
    await title.waitFor();
    assert.equal(await title.textContent(), want.title);
    assert.equal(await tab.frame.locator('#signin').textContent(), want.button);
    assert.equal(await tab.frame.locator('html').getAttribute('lang'), lang);
    await tab.send({ type: 'init', content: { lang, email: 'agent1@demo.local', password: 'bad', loginMethod: 0 } });
    await tab.frame.locator('#notice').waitFor();
    assert.equal(await tab.frame.locator('#notice').textContent(), want.wrong);
    await tab.signIn('agent1@demo.local', 'demo1234', lang);
    assert.equal(await tab.frame.locator('#status-label').textContent(), want.status);
    assert.equal(await tab.frame.locator('#signout').textContent(), want.signOut);
    await tab.send({ type: 'loginOut' });
    await tab.waitFor((m) => m.type === 'logout');
    await tab.page.context().close();
  });
}

test('an unknown lang falls back to en-US', async () => {
  const tab = await env.open();
  await tab.send({ type: 'init', content: { lang: 'fr-FR' } });
  await tab.frame.locator('h1').waitFor();
  assert.equal(await tab.frame.locator('h1').textContent(), EXPECT['en-US'].title);
  await tab.page.context().close();
});

test('every language has every string', async () => {
  const tab = await env.open();
  const missing = await tab.page.frames()[1].evaluate(async () => (await import('./js/i18n.js')).missingKeys());
  assert.deepEqual(missing, { 'en-US': [], 'zh-CN': [], 'es-MX': [] });
  await tab.page.context().close();
});
