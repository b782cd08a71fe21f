(function () {
  'use strict';
  var q = document.getElementById('q');
  var verdict = document.getElementById('verdict');
  var shown = document.getElementById('shown');
  var table = document.getElementById('findings');
  if (!q || !verdict || !shown || !table) {
    return;
  }
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var text = rows.map(function (r) { return r.textContent.toLowerCase(); });
  function apply() {
    var needle = q.value.trim().toLowerCase();
    var want = verdict.value;
    var n = 0;
    for (var i = 0; i < rows.length; i++) {
      var ok = (want === '' || rows[i].getAttribute('data-verdict') === want) &&
        (needle === '' || text[i].indexOf(needle) !== -1);
      rows[i].hidden = !ok;
      if (ok) {
        n++;
      }
    }
    shown.textContent = n.toLocaleString('en-US');
  }
  q.addEventListener('input', apply);
  verdict.addEventListener('change', apply);
  apply();
  document.documentElement.setAttribute('data-filter-ready', String(rows.length));
})();
