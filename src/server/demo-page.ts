/** `GET /`: a page that subscribes with the browser's own EventSource, so a person can watch a stream. */
import { EVENT } from '../protocol/events.js';

export const DEMO_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>notify serve</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:2rem;max-width:60rem}code,pre{background:#f4f4f4;padding:2px 4px}
#log li{margin:.25rem 0}.meta{color:#666;font-size:12px}</style></head>
<body>
<h1>notify serve</h1>
<p>Watching <code id="who"></code> with <code>EventSource</code>. Add <code>?user=42</code> to this page's address to watch
user 42 (plus broadcast). Publish with:</p>
<pre id="cmd"></pre>
<p>Status: <b id="status">connecting</b> &middot; cursor <code id="cursor">-</code> &middot; unread <b id="unread">0</b></p>
<ol id="log" reversed></ol>
<script>
const params = new URLSearchParams(location.search);
const user = params.get('user');
const q = user ? '?user=' + encodeURIComponent(user) : '';
document.getElementById('who').textContent = user ? 'user ' + user : 'broadcast';
document.getElementById('cmd').textContent = 'notify publish --url ' + location.origin + (user ? ' --user ' + user : ' --broadcast') + " --title 'Hello'";
const $ = (id) => document.getElementById(id);
const es = new EventSource('/events' + q);
function show(n) {
  const li = document.createElement('li');
  li.innerHTML = '<b></b> <span></span><div class="meta"></div>';
  li.children[0].textContent = n.title; li.children[1].textContent = n.body;
  li.children[2].textContent = n.type + ' \\u00b7 ' + n.createdAt + ' \\u00b7 ' + n.id;
  $('log').prepend(li);
}
es.onopen = () => ($('status').textContent = 'open');
es.onerror = () => ($('status').textContent = 'reconnecting');
es.addEventListener('${EVENT.init}', (e) => { const d = JSON.parse(e.data); $('cursor').textContent = d.cursor; $('unread').textContent = d.unreadCount; d.unread.slice().reverse().forEach(show); });
es.addEventListener('${EVENT.notification}', (e) => { $('cursor').textContent = e.lastEventId; $('unread').textContent = +$('unread').textContent + 1; show(JSON.parse(e.data)); });
es.addEventListener('${EVENT.batch}', (e) => { $('cursor').textContent = e.lastEventId; JSON.parse(e.data).forEach(show); });
es.addEventListener('${EVENT.reset}', (e) => { $('status').textContent = 'reset: ' + JSON.parse(e.data).reason; $('log').innerHTML = ''; });
</script>
</body></html>
`;
