// The last page of the single sign-on popup (served by /sso/callback): it
// hands the result to the softphone that opened the popup, at this origin
// only, and closes itself after a success. After a failure it stays, showing
// why (the softphone shows it too, in the agent's language).
(function () {
  var node = document.getElementById('sso-result');
  /** @type {any} */
  var result = {};
  try { result = JSON.parse((node && node.textContent) || '{}'); } catch (_) { result = { error: 'providerFailed' }; }
  if (window.opener) window.opener.postMessage({ seatlineSso: result }, location.origin);
  if (!result.error) window.close();
})();
