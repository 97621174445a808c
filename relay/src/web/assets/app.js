// map: live updates for the plan page. The page works without this script;
// it only listens to the relay's server-sent events and, when the plan
// changes, fetches the new plan and puts it in place without a reload.
// While someone is typing in a form, the update waits until they leave it.
(function () {
  'use strict';
  var body = document.body;
  var eventsUrl = body.getAttribute('data-events');
  var liveUrl = body.getAttribute('data-live');
  if (!eventsUrl || !liveUrl || !window.EventSource || !window.fetch) {
    return;
  }
  var status = document.getElementById('live-status');
  var busy = false;
  var pending = false;
  var source = null;

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  function main() {
    return document.getElementById('plan');
  }

  // True while the visitor is in the middle of an edit inside the plan.
  function editing() {
    var active = document.activeElement;
    var plan = main();
    if (!active || !plan || !plan.contains(active)) {
      return false;
    }
    var tag = active.tagName;
    return tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA';
  }

  function refresh() {
    if (busy) {
      pending = true;
      return;
    }
    if (editing()) {
      pending = true;
      say('The plan changed; it will update when you leave the field.');
      return;
    }
    busy = true;
    fetch(liveUrl, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (response) {
        if (response.status === 401) {
          say('This link has expired or was withdrawn: ask for a new one.');
          if (source) {
            source.close();
          }
          return null;
        }
        if (!response.ok) {
          throw new Error('HTTP ' + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        if (html === null) {
          return;
        }
        var plan = main();
        var open = [];
        plan.querySelectorAll('details[open]').forEach(function (d) {
          var row = d.closest('[id]');
          open.push((row ? row.id : '') + '|' + d.className);
        });
        plan.innerHTML = html;
        open.forEach(function (key) {
          var parts = key.split('|');
          var row = parts[0] ? document.getElementById(parts[0]) : null;
          if (!row) {
            return;
          }
          row.querySelectorAll('details').forEach(function (d) {
            if (d.className === parts[1]) {
              d.open = true;
            }
          });
        });
        say('Updated at ' + new Date().toLocaleTimeString() + '.');
      })
      .catch(function () {
        say('Could not fetch the latest plan; it will retry on the next change.');
      })
      .then(function () {
        busy = false;
        if (pending) {
          pending = false;
          refresh();
        }
      });
  }

  document.addEventListener('focusout', function () {
    if (pending) {
      setTimeout(function () {
        if (pending && !editing()) {
          pending = false;
          refresh();
        }
      }, 0);
    }
  });

  var opened = false;
  source = new EventSource(eventsUrl);
  source.addEventListener('change', refresh);
  source.addEventListener('open', function () {
    // After a reconnect, changes may have been missed.
    if (opened) {
      refresh();
    }
    opened = true;
    say('Live: changes by others appear here as they happen.');
  });
  source.addEventListener('error', function () {
    say('Connection to the relay lost; retrying...');
  });
})();
