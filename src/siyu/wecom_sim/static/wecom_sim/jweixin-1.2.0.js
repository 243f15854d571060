/* jweixin-1.2.0.js as the emulated WeCom client serves it: wx.config / wx.agentConfig are checked
   by the client (signature, trusted domain, ticket kind) and wx.invoke runs in the client. */
(function(){
  if (window.wx && window.wx.__sim) return;
  var pending = {}, seq = 0, inClient = window.parent !== window;
  var cfg = {state: null, ready: [], error: []};
  function url(){ return location.href.split('#')[0]; }
  function call(op, payload, cb){
    if (!inClient) { setTimeout(function(){ cb({ok:false, errMsg: (payload.name || payload.kind) + ':fail not in wecom client', err_msg: (payload.name || payload.kind) + ':fail not in wecom client'}); }); return; }
    // only data crosses to the client (callbacks such as success/fail stay here)
    payload = JSON.parse(JSON.stringify(payload));
    var id = ++seq; pending[id] = cb; window.parent.postMessage({simWx:1, id:id, op:op, payload:payload}, '*');
  }
  window.addEventListener('message', function(e){
    if (e.source !== window.parent) return;
    var d = e.data; if (!d || !d.simWxReply || !pending[d.id]) return;
    var cb = pending[d.id]; delete pending[d.id]; cb(d.result || {});
  });
  function finish(res, opts){
    var m = res.err_msg || res.errMsg || '';
    if (!opts) return;
    if (/:ok$/.test(m)) { opts.success && opts.success(res); }
    else if (/:cancel$/.test(m)) { opts.cancel && opts.cancel(res); }
    else { opts.fail && opts.fail(res); }
    opts.complete && opts.complete(res);
  }
  var wx = {
    __sim: true,
    config: function(p){
      var mine = cfg = {state: null, ready: [], error: []};  // a new registration replaces the last one
      call('register', {kind:'config', params:p || {}, url:url()}, function(r){
        if (cfg !== mine) return;  // an answer to a registration since replaced
        cfg.state = r.ok ? 'ok' : r.errMsg;
        (r.ok ? cfg.ready : cfg.error).forEach(function(f){ r.ok ? f() : f({errMsg:r.errMsg}); });
      });
    },
    ready: function(f){ if (cfg.state === 'ok') f(); else cfg.ready.push(f); },
    error: function(f){ if (cfg.state && cfg.state !== 'ok') f({errMsg:cfg.state}); else cfg.error.push(f); },
    agentConfig: function(p){
      p = p || {};
      call('register', {kind:'agentConfig', params:p, url:url()}, function(r){ finish({errMsg:r.errMsg, err_msg:r.errMsg}, p); });
    },
    invoke: function(name, args, cb){
      call('invoke', {name:name, args:args || {}, url:url()}, function(r){ cb && cb(r); });
    }
  };
  wx.checkJsApi = function(o){ finish({errMsg:'checkJsApi:ok', checkResult:{}}, o); };
  window.wx = window.jWeixin = wx;
})();
