// stairhook console: pages marked data-refresh reload their content every
// few seconds while visible, unless the reader is typing in a form or
// selecting text. Everything works without it; it adds nothing to the
// page but what the server rendered (no innerHTML of strings: the new
// content is a parsed document's node, and the CSP runs no inline script).
(function () {
  'use strict';
  var seconds = Number(document.body.getAttribute('data-refresh') || 0);
  if (!seconds || !window.fetch || !window.DOMParser) {
    return;
  }
  var busy = false;
  function reading() {
    var a = document.activeElement;
    if (a && /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(a.tagName)) {
      return true;
    }
    var sel = window.getSelection && window.getSelection();
    return Boolean(sel && String(sel));
  }
  function refresh() {
    if (busy || document.hidden || reading()) {
      return;
    }
    busy = true;
    fetch(window.location.href, { credentials: 'same-origin', redirect: 'manual', headers: { 'Accept': 'text/html' } })
      .then(function (r) {
        if (!r.ok) {
          throw new Error('status ' + r.status);
        }
        return r.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, 'text/html').getElementById('content');
        var current = document.getElementById('content');
        if (fresh && current) {
          current.replaceWith(document.importNode(fresh, true));
        }
      })
      .catch(function () { /* the next tick tries again */ })
      .then(function () { busy = false; });
  }
  window.setInterval(refresh, seconds * 1000);
})();
