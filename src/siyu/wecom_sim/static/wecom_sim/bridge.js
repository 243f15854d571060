(function(){
  var frame = document.getElementById('toolbar'); if (!frame) return;
  var chat = JSON.parse(document.getElementById('chat-data').textContent);
  var origin = chat.toolbar_origin, dialog = document.getElementById('share');
  function post(path, body){
    return fetch('/client/api/' + path, {method:'POST', headers:{'Content-Type':'application/json'},
      body: JSON.stringify(Object.assign({chat_type: chat.chat_type, chat_key: chat.chat_key}, body))}).then(function(r){return r.json();});
  }
  function reply(id, result){ frame.contentWindow.postMessage({simWxReply:1, id:id, result:result}, origin); }
  function confirmShare(name, args){
    return new Promise(function(resolve){
      document.getElementById('share-title').textContent = name === 'shareToExternalMoments' ? '发表到客户朋友圈' : '群发助手';
      document.getElementById('share-body').textContent = JSON.stringify(args, null, 1);
      dialog.returnValue = ''; dialog.showModal();
      dialog.addEventListener('close', function once(){ dialog.removeEventListener('close', once); resolve(dialog.returnValue === 'send'); });
    });
  }
  window.addEventListener('message', function(e){
    if (e.source !== frame.contentWindow || e.origin !== origin) return;
    var d = e.data; if (!d || !d.simWx) return;
    if (d.op === 'register') { post('register', d.payload).then(function(r){ reply(d.id, r); }); return; }
    if (d.op !== 'invoke') return;
    var name = d.payload.name;
    var go = /^shareTo/.test(name) ? confirmShare(name, d.payload.args) : Promise.resolve(true);
    go.then(function(ok){
      if (!ok) { reply(d.id, {err_msg: name + ':cancel', errMsg: name + ':cancel'}); return; }
      post('invoke', d.payload).then(function(r){ reply(d.id, r); refresh(); });
    });
  });
  var log = document.getElementById('log'), last = 0;
  function refresh(){
    fetch('/client/api/messages?' + new URLSearchParams({chat_type: chat.chat_type, chat_key: chat.chat_key, after: last}))
      .then(function(r){return r.json();}).then(function(r){
        (r.items || []).forEach(function(m){
          var div = document.createElement('div'); div.className = m.kind === 'visit' ? 'visit' : 'bubble';
          div.dataset.id = m.id; div.textContent = m.text;
          if (m.link) { var a = document.createElement('span'); a.className = 'card-link'; a.textContent = m.link; div.appendChild(a); }
          log.appendChild(div); last = Math.max(last, m.seq);
        });
        if ((r.items || []).length) log.scrollTop = log.scrollHeight;
      });
  }
  refresh(); setInterval(refresh, 2000);
})();
