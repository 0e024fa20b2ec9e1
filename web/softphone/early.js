// Runs before the app's modules: keep the host's messages until the app is
// ready to read them (the vendor's examples post `init` from the iframe's
// onload, which can come before our modules have run).
(function () {
  /** @type {{data: unknown, origin: string, source: MessageEventSource|null}[]} */
  var inbox = [];
  var w = /** @type {any} */ (window);
  w.__seatlineInbox = inbox;
  window.addEventListener('message', function (e) {
    if (w.__seatlineTakeover) return;
    inbox.push({ data: e.data, origin: e.origin, source: e.source });
  });
})();
