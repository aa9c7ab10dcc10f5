// The voxray demo page: microphone -> voxray -> speaker.
//
// Speaks the OpenAI Realtime API (GA event names) to the server that served
// this page, over one of two transports:
//
// WebRTC (the default): POST /v1/realtime/calls with an SDP offer; the
// microphone goes as an Opus track with the browser's echo cancellation,
// noise suppression and gain control on, the reply comes back as a remote
// track played by an <audio> element, and the events flow as JSON on the
// data channel "oai-events". No headphones needed.
//
// WebSocket (/v1/realtime): the fallback when the browser has no WebRTC or
// the call cannot be set up (WebRTC disabled on the server, UDP blocked...),
// or on request with ?transport=ws. Capture runs in an AudioWorklet
// (worklet.js) at the AudioContext's own rate, declared to the server with
// session.update, so the browser does no resampling of its own; replies
// (audio/pcm, s16le) play through a second AudioContext, each chunk
// scheduled right after the previous one so the audio has no gaps. The
// microphone is captured raw there, so the page asks for headphones.
//
// window.voxray mirrors what the page shows, for tests and the curious:
//   state        idle | connecting | listening | hearing | thinking | speaking
//   states       the last 50 state changes, oldest first
//   transcripts  final user transcripts, one per turn
//   partial      the user transcript of the turn in progress
//   replies      bot reply texts, one per response (growing while it speaks)
//   audioChunks  response.output_audio.delta events played
//   audioSamples samples in them
//   playing      reply chunks scheduled and not yet played (0 after barge-in)
//   latencies    ms from end of speech (speech_stopped) to first reply audio
//   lastError    { type, code, message } of the last error shown, or null
//   inputRate    the rate declared for input_audio_buffer.append
//   keyAsked     the server wants an API key and the page shows its field
//   usedSecret   the last call opened with a client secret
//   transport    webrtc | ws: how the last call talks
//   fallback     why the last call fell back to the WebSocket, or null
//   callId       the WebRTC call's Location (/v1/realtime/calls/ID), or null
//   remoteStream the WebRTC reply audio (a MediaStream), or null
//   audioStarted WebRTC replies whose audio started (output_audio_buffer.started)
//   cleared      WebRTC replies cut off by barge-in (output_audio_buffer.cleared)
//   micSettings  the microphone track's settings (echoCancellation, ...)
//
// When the server asks for an API key ([auth] in voxray.ini), a browser
// cannot send it as a header: the page trades the key the user types for a
// one-use client secret (POST /v1/realtime/client_secrets) and offers that
// as the WebSocket subprotocol openai-insecure-api-key.SECRET next to
// "realtime", or as the Bearer token of the WebRTC offer. The key stays in
// the input field; nothing is stored.
'use strict';

(() => {
    // Input rates the server takes for audio/pcm.
    const SERVER_RATES = [8000, 16000, 22050, 24000, 32000, 44100, 48000];
    const FALLBACK_RATE = 24000; // the protocol's default
    const BLOCK_MS = 20; // capture block sent per input_audio_buffer.append
    const PLAY_LEAD_S = 0.05; // head start after the queue ran dry, absorbs jitter
    const GATHER_WAIT_MS = 1500; // longest wait for ICE candidates before the offer goes
    const HINT = {
        webrtc: 'Press the button and speak. The call uses WebRTC with your browser\'s echo cancellation: loudspeakers are fine.',
        ws: 'Press the button and speak. Wear headphones: over the WebSocket the microphone is captured raw (no echo cancellation), so the bot would hear itself through loudspeakers.',
    };
    const params = new URLSearchParams(location.search);
    const asked = params.get('transport'); // webrtc | ws | null

    const STATUS_TEXT = {
        idle: 'Press the button to start talking.',
        connecting: 'Connecting…',
        listening: 'Listening — say something.',
        hearing: 'Hearing you…',
        thinking: 'Thinking…',
        speaking: 'Speaking…',
    };

    const $ = (id) => document.getElementById(id);
    const ui = {
        talk: $('talk'),
        talkLabel: $('talk-label'),
        status: $('status'),
        log: $('log'),
        empty: $('empty'),
        error: $('error'),
        stats: $('stats'),
        auth: $('auth'),
        apiKey: $('api-key'),
        hint: $('hint'),
    };

    const hook = {
        state: 'idle',
        states: [],
        transcripts: [],
        partial: '',
        replies: [],
        audioChunks: 0,
        audioSamples: 0,
        playing: 0,
        latencies: [],
        lastError: null,
        inputRate: 0,
        sessionId: null,
        keyAsked: false,
        usedSecret: false,
        transport: null,
        fallback: null,
        callId: null,
        remoteStream: null,
        audioStarted: 0,
        cleared: 0,
        micSettings: null,
    };
    window.voxray = hook;

    let sess = null; // the live call, see start()

    // ------------------------------------------------------------ display

    function setState(state) {
        if (state !== hook.state) {
            hook.states.push(state);
            if (hook.states.length > 50) hook.states.shift();
        }
        hook.state = state;
        ui.status.dataset.state = state;
        ui.status.textContent = STATUS_TEXT[state];
        document.body.dataset.state = state;
        const on = state !== 'idle';
        ui.talk.setAttribute('aria-pressed', on ? 'true' : 'false');
        ui.talkLabel.textContent = on ? 'Stop' : 'Start talking';
    }

    function showError(err) {
        const e = {
            type: err.type || 'error',
            code: err.code || null,
            message: err.message || String(err),
        };
        hook.lastError = e;
        const label = document.createElement('strong');
        label.textContent = 'Error: ';
        ui.error.replaceChildren(label, e.code ? `${e.message} (${e.code})` : e.message);
        ui.error.hidden = false;
    }

    function clearError() {
        ui.error.hidden = true;
        ui.error.textContent = '';
    }

    // A conversation bubble; returns its text element.
    function bubble(role) {
        if (ui.empty.isConnected) ui.empty.remove();
        const li = document.createElement('li');
        li.className = `msg ${role}`;
        const who = document.createElement('span');
        who.className = 'who';
        who.textContent = role === 'user' ? 'You' : 'voxray';
        const text = document.createElement('p');
        text.className = 'text';
        li.append(who, text);
        ui.log.append(li);
        scrollDown();
        return text;
    }

    function scrollDown() {
        ui.log.scrollTop = ui.log.scrollHeight;
    }

    function showStats() {
        const l = hook.latencies;
        const parts = [];
        if (l.length) {
            const last = l[l.length - 1];
            const avg = l.reduce((a, b) => a + b, 0) / l.length;
            parts.push(`Reply delay: ${Math.round(last)} ms`);
            if (l.length > 1) parts.push(`avg ${Math.round(avg)} ms over ${l.length} turns`);
        } else {
            parts.push('Reply delay: —');
        }
        if (hook.transport === 'webrtc') parts.push('WebRTC, Opus 48 kHz');
        else if (hook.inputRate) parts.push(`WebSocket, mic ${hook.inputRate / 1000} kHz`);
        ui.stats.textContent = parts.join(' · ');
    }

    // ------------------------------------------------------------ PCM <-> base64

    function toBase64(buf) {
        const bytes = new Uint8Array(buf);
        let s = '';
        for (let i = 0; i < bytes.length; i += 0x8000) {
            s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
        }
        return btoa(s);
    }

    // base64 s16le -> Float32Array
    function pcmFromBase64(b64) {
        const bin = atob(b64);
        const n = bin.length >> 1;
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++) {
            let v = bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8);
            if (v >= 0x8000) v -= 0x10000;
            out[i] = v / 0x8000;
        }
        return out;
    }

    // ------------------------------------------------------------ playback

    // Gapless playback of PCM chunks: each starts where the previous ends.
    class Player {
        constructor() {
            try {
                this.ctx = new AudioContext({ sampleRate: 24000, latencyHint: 'interactive' });
            } catch {
                // The browser resamples buffers of any rate to its own.
                this.ctx = new AudioContext({ latencyHint: 'interactive' });
            }
            this.head = 0; // context time at which the next chunk starts
            this.sources = new Set();
            this.onidle = null;
        }

        play(samples, rate) {
            const buf = this.ctx.createBuffer(1, samples.length, rate);
            buf.copyToChannel(samples, 0);
            const src = this.ctx.createBufferSource();
            src.buffer = buf;
            src.connect(this.ctx.destination);
            const now = this.ctx.currentTime;
            if (this.head < now) this.head = now + PLAY_LEAD_S;
            src.start(this.head);
            this.head += buf.duration;
            this.sources.add(src);
            hook.playing = this.sources.size;
            src.onended = () => {
                this.sources.delete(src);
                hook.playing = this.sources.size;
                if (this.sources.size === 0 && this.onidle) this.onidle();
            };
        }

        get playing() {
            return this.sources.size > 0;
        }

        // Barge-in: silence at once, drop everything scheduled.
        flush() {
            for (const src of this.sources) {
                src.onended = null;
                try {
                    src.stop();
                } catch {
                    /* not started yet in some engines: disconnect below */
                }
                src.disconnect();
            }
            this.sources.clear();
            hook.playing = 0;
            this.head = 0;
        }

        close() {
            this.flush();
            return this.ctx.close().catch(() => {});
        }
    }

    // ------------------------------------------------------------ the call

    async function start() {
        clearError();
        setState('connecting');
        // Both contexts are made inside the click handler, before any await,
        // so autoplay policies count them as started by the user.
        const micCtx = new AudioContext({ latencyHint: 'interactive' });
        const player = new Player();
        const rtc = asked !== 'ws' && typeof RTCPeerConnection === 'function';
        // The reply's <audio> element, also made here for autoplay.
        const audioEl = rtc ? new Audio() : null;
        if (audioEl) audioEl.autoplay = true;
        const s = {
            micCtx,
            player,
            transport: rtc ? 'webrtc' : 'ws',
            audioEl,
            pc: null,
            dc: null,
            rtcPlaying: false, // WebRTC: reply audio between started and stopped/cleared
            ws: null,
            stream: null,
            node: null,
            source: null,
            sink: null,
            opened: false, // the WebSocket opened (a refused upgrade never does)
            ready: false, // session.updated received: appends may flow
            outRate: 24000,
            users: new Map(), // item_id -> { text element, text }
            resp: null, // the response in progress
            muted: new Set(), // response ids interrupted here: drop their audio
            tStop: 0, // performance.now() at speech_stopped
            closing: false,
        };
        sess = s;
        player.onidle = () => {
            if (sess === s && hook.state === 'speaking' && !s.resp) setState('listening');
        };
        try {
            // WebRTC: the browser's echo cancellation, noise suppression and
            // gain control; the WebSocket takes the microphone raw.
            s.stream = await navigator.mediaDevices.getUserMedia({
                audio: {
                    echoCancellation: rtc,
                    noiseSuppression: rtc,
                    autoGainControl: rtc,
                    channelCount: 1,
                },
            });
            const mic = s.stream.getAudioTracks()[0];
            hook.micSettings = mic && mic.getSettings ? mic.getSettings() : null;
            if (sess !== s) return release(s); // stopped meanwhile: free the mic
            await micCtx.audioWorklet.addModule('worklet.js');
            if (sess !== s) return release(s);
            const native = micCtx.sampleRate;
            const rate = SERVER_RATES.includes(native) ? native : FALLBACK_RATE;
            hook.inputRate = rate;
            showStats();
            s.source = micCtx.createMediaStreamSource(s.stream);
            s.node = new AudioWorkletNode(micCtx, 'voxray-capture', {
                numberOfInputs: 1,
                numberOfOutputs: 1,
                channelCount: 1,
                channelCountMode: 'explicit',
                processorOptions: { outRate: rate, blockMs: BLOCK_MS },
            });
            s.node.port.onmessage = (e) => onCapture(s, e.data);
            // Engines render only nodes that lead to the destination: a
            // muted path keeps the capture node running everywhere.
            s.sink = micCtx.createGain();
            s.sink.gain.value = 0;
            s.source.connect(s.node);
            s.node.connect(s.sink);
            s.sink.connect(micCtx.destination);
            await Promise.all([micCtx.resume(), player.ctx.resume()]);
            if (sess !== s) return release(s);
            if (rtc) connectRtc(s, rate);
            else connect(s, rate);
        } catch (e) {
            if (sess !== s) return release(s);
            const denied = e && (e.name === 'NotAllowedError' || e.name === 'SecurityError');
            showError({
                code: e && e.name,
                message: denied
                    ? 'The microphone is blocked: allow it for this page and try again.'
                    : `Could not start the microphone: ${e && e.message ? e.message : e}`,
            });
            stop();
        }
    }

    // ------------------------------------------------------------ API key

    function askForKey() {
        hook.keyAsked = true;
        ui.auth.hidden = false;
        ui.apiKey.focus();
    }

    // Trade the API key for a client secret good for one session.
    async function clientSecret(key) {
        let r;
        try {
            r = await fetch('/v1/realtime/client_secrets', {
                method: 'POST',
                headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
                body: JSON.stringify({ expires_after: { anchor: 'created_at', seconds: 60 } }),
                cache: 'no-store',
            });
        } catch (e) {
            throw { code: 'network_error', message: `Could not reach the server: ${e && e.message ? e.message : e}` };
        }
        let body = null;
        try {
            body = await r.json();
        } catch {
            /* not JSON: reported by status below */
        }
        if (r.ok && body && typeof body.value === 'string') return body.value;
        if (r.status === 401) {
            askForKey();
            throw { code: 'invalid_api_key', message: 'The server refused this API key.' };
        }
        throw (body && body.error) || { code: `http_${r.status}`, message: `Could not get a client secret (HTTP ${r.status}).` };
    }

    // A browser is not told why an upgrade failed; a plain GET of the same
    // path answers 401 when the server wants a key.
    async function keyNeeded() {
        try {
            const r = await fetch('/v1/realtime', { cache: 'no-store' });
            return r.status === 401;
        } catch {
            return false;
        }
    }

    function showTransport(t) {
        hook.transport = t;
        if (ui.hint) ui.hint.textContent = HINT[t];
        showStats();
    }

    async function connect(s, rate) {
        s.transport = 'ws';
        showTransport('ws');
        const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/v1/realtime`;
        const key = ui.apiKey.value.trim();
        let ws;
        if (key) {
            let secret;
            try {
                secret = await clientSecret(key);
            } catch (e) {
                if (sess !== s) return;
                showError(e);
                stop();
                return;
            }
            if (sess !== s) return;
            hook.usedSecret = true;
            ws = new WebSocket(url, ['realtime', `openai-insecure-api-key.${secret}`]);
        } else {
            hook.usedSecret = false;
            ws = new WebSocket(url);
        }
        s.ws = ws;
        ws.onopen = () => {
            s.opened = true;
            send(s, {
                type: 'session.update',
                session: {
                    type: 'realtime',
                    audio: {
                        input: { format: { type: 'audio/pcm', rate } },
                        output: { format: { type: 'audio/pcm', rate: 24000 } },
                    },
                },
            });
        };
        ws.onmessage = (e) => {
            let ev;
            try {
                ev = JSON.parse(e.data);
            } catch {
                return; // the server only sends JSON text
            }
            if (sess === s) onEvent(s, ev);
        };
        ws.onclose = async (e) => {
            if (sess !== s || s.closing) return;
            if (!s.opened && !key && (await keyNeeded())) {
                if (sess !== s) return;
                askForKey();
                showError({
                    code: 'invalid_api_key',
                    message: 'This server needs an API key: enter it and press the button again.',
                });
                stop();
                return;
            }
            if (sess !== s) return;
            showError({
                code: `close_${e.code}`,
                message: `The connection closed${e.reason ? `: ${e.reason}` : ''}.`,
            });
            stop();
        };
        // onerror carries no detail in browsers; onclose follows and reports.
    }

    // The offer once ICE gathering is complete (or GATHER_WAIT_MS passed):
    // the signalling is one request, so the candidates travel in it.
    function gathered(pc) {
        if (pc.iceGatheringState === 'complete') return Promise.resolve();
        return new Promise((resolve) => {
            const done = () => {
                if (pc.iceGatheringState !== 'complete') return;
                pc.removeEventListener('icegatheringstatechange', done);
                resolve();
            };
            pc.addEventListener('icegatheringstatechange', done);
            setTimeout(resolve, GATHER_WAIT_MS);
        });
    }

    // A WebRTC call as OpenAI Realtime clients make it: the microphone as a
    // track, the events on "oai-events", the SDP offer POSTed to
    // /v1/realtime/calls. When the call cannot be set up, the same session
    // goes over the WebSocket instead (fallBack).
    async function connectRtc(s, rate) {
        showTransport('webrtc');
        hook.fallback = null;
        hook.callId = null;
        hook.remoteStream = null;
        const fallBack = (why) => {
            if (sess !== s) return;
            hook.fallback = why;
            closeRtc(s);
            connect(s, rate);
        };
        const key = ui.apiKey.value.trim();
        const headers = { 'Content-Type': 'application/sdp' };
        if (key) {
            try {
                headers.Authorization = `Bearer ${await clientSecret(key)}`;
            } catch (e) {
                if (sess !== s) return;
                showError(e);
                stop();
                return;
            }
            if (sess !== s) return;
            hook.usedSecret = true;
        } else {
            hook.usedSecret = false;
        }
        let pc;
        try {
            pc = new RTCPeerConnection();
        } catch (e) {
            fallBack(`RTCPeerConnection: ${e && e.message ? e.message : e}`);
            return;
        }
        s.pc = pc;
        for (const t of s.stream.getAudioTracks()) pc.addTrack(t, s.stream);
        const dc = pc.createDataChannel('oai-events');
        s.dc = dc;
        pc.ontrack = (e) => {
            const stream = e.streams[0] || new MediaStream([e.track]);
            hook.remoteStream = stream;
            s.audioEl.srcObject = stream;
            s.audioEl.play().catch(() => {});
        };
        dc.onmessage = (e) => {
            let ev;
            try {
                ev = JSON.parse(e.data);
            } catch {
                return;
            }
            if (sess === s) onEvent(s, ev);
        };
        const ended = (why) => {
            if (sess !== s || s.closing) return;
            showError({ code: 'call_ended', message: `The call ended${why ? `: ${why}` : ''}.` });
            stop();
        };
        dc.onclose = () => ended('the server hung up');
        pc.onconnectionstatechange = () => {
            if (pc.connectionState === 'failed') ended('the connection failed (is UDP blocked?)');
        };
        let resp;
        let answer;
        try {
            await pc.setLocalDescription(await pc.createOffer());
            await gathered(pc);
            if (sess !== s) return;
            resp = await fetch('/v1/realtime/calls', {
                method: 'POST', body: pc.localDescription.sdp, headers, cache: 'no-store',
            });
            answer = await resp.text();
        } catch (e) {
            fallBack(`the offer could not be sent: ${e && e.message ? e.message : e}`);
            return;
        }
        if (sess !== s) return;
        if (resp.status === 401 || resp.status === 403) {
            if (!key) askForKey();
            let err = null;
            try {
                err = JSON.parse(answer).error;
            } catch {
                /* not JSON */
            }
            showError(key ? err || { code: 'invalid_api_key', message: 'The server refused this API key.' }
                : { code: 'invalid_api_key', message: 'This server needs an API key: enter it and press the button again.' });
            stop();
            return;
        }
        if (resp.status === 429) {
            let err = null;
            try {
                err = JSON.parse(answer).error;
            } catch {
                /* not JSON */
            }
            showError(err || { code: 'rate_limited', message: 'Too many calls from here: try again in a moment.' });
            stop();
            return;
        }
        if (resp.status !== 201) {
            fallBack(`POST /v1/realtime/calls answered ${resp.status}`);
            return;
        }
        hook.callId = resp.headers.get('Location');
        try {
            await pc.setRemoteDescription({ type: 'answer', sdp: answer });
        } catch (e) {
            fallBack(`the answer was not accepted: ${e && e.message ? e.message : e}`);
        }
    }

    // Hang up a WebRTC call (the server sees the peer connection close).
    function closeRtc(s) {
        if (s.dc) {
            s.dc.onclose = null;
            s.dc.onmessage = null;
        }
        if (s.pc) {
            s.pc.ontrack = null;
            s.pc.onconnectionstatechange = null;
            try {
                s.pc.close();
            } catch {
                /* already closed */
            }
        }
        s.pc = null;
        s.dc = null;
        s.rtcPlaying = false;
        if (s.audioEl) s.audioEl.srcObject = null;
    }

    function send(s, ev) {
        if (s.dc) {
            if (s.dc.readyState === 'open') s.dc.send(JSON.stringify(ev));
            return;
        }
        if (s.ws && s.ws.readyState === WebSocket.OPEN) s.ws.send(JSON.stringify(ev));
    }

    const audioPlaying = (s) => s.rtcPlaying || s.player.playing;

    // A block from the worklet: forward it once the session takes our rate.
    function onCapture(s, msg) {
        document.body.style.setProperty('--level', Math.min(1, msg.rms * 6).toFixed(3));
        if (!s.ready || s.transport !== 'ws') return; // WebRTC: the track carries it
        send(s, { type: 'input_audio_buffer.append', audio: toBase64(msg.pcm) });
    }

    // Free everything a call holds; safe to call again on the same call
    // (start() does when the user stopped it while it was still starting).
    function release(s) {
        s.closing = true;
        closeRtc(s);
        if (s.ws) {
            try {
                s.ws.close(1000, 'bye');
            } catch {
                /* already closed */
            }
        }
        if (s.node) {
            s.node.port.postMessage('stop');
            s.node.port.onmessage = null;
            s.node.disconnect();
        }
        if (s.source) s.source.disconnect();
        if (s.sink) s.sink.disconnect();
        if (s.stream) for (const t of s.stream.getTracks()) t.stop();
        if (s.micCtx.state !== 'closed') s.micCtx.close().catch(() => {});
        if (s.player.ctx.state !== 'closed') s.player.close();
    }

    function stop() {
        const s = sess;
        sess = null;
        if (s) release(s);
        document.body.style.setProperty('--level', '0');
        setState('idle');
    }

    // ------------------------------------------------------------ server events

    function userTurn(s, itemId) {
        let u = s.users.get(itemId);
        if (!u) {
            u = { el: bubble('user'), text: '' };
            u.el.classList.add('pending');
            u.el.textContent = '…';
            s.users.set(itemId, u);
        }
        return u;
    }

    function replyOf(s, responseId) {
        if (!s.resp || s.resp.id !== responseId) return null;
        return s.resp;
    }

    function addReplyText(r, delta) {
        if (!r.el) {
            r.el = bubble('bot');
            r.index = hook.replies.push('') - 1;
        }
        r.text += delta;
        r.el.textContent = r.text;
        hook.replies[r.index] = r.text;
        scrollDown();
    }

    function onEvent(s, ev) {
        switch (ev.type) {
        case 'session.created':
            hook.sessionId = ev.session && ev.session.id;
            // WebRTC: the track's format is negotiated; nothing to declare.
            if (s.transport === 'webrtc' && !s.ready) {
                s.ready = true;
                setState('listening');
            }
            break;

        case 'session.updated':
            if (ev.session && ev.session.audio && ev.session.audio.output && ev.session.audio.output.format) {
                s.outRate = ev.session.audio.output.format.rate || 24000;
            }
            if (!s.ready) {
                s.ready = true;
                setState('listening');
            }
            break;

        case 'input_audio_buffer.speech_started': {
            // Barge-in: the server cancels its reply; stop playing it now.
            s.player.flush();
            if (s.resp) s.muted.add(s.resp.id);
            hook.partial = '';
            userTurn(s, ev.item_id);
            setState('hearing');
            break;
        }

        case 'input_audio_buffer.speech_stopped':
            s.tStop = performance.now();
            setState('thinking');
            break;

        case 'conversation.item.input_audio_transcription.delta': {
            const u = userTurn(s, ev.item_id);
            u.text += ev.delta || '';
            hook.partial = u.text;
            u.el.textContent = u.text;
            scrollDown();
            break;
        }

        case 'conversation.item.input_audio_transcription.completed': {
            const u = userTurn(s, ev.item_id);
            const text = (ev.transcript || '').trim();
            u.text = text;
            u.el.classList.remove('pending');
            if (text) {
                u.el.textContent = text;
                hook.transcripts.push(text);
                clearError(); // a turn went through: an earlier error is stale
            } else {
                u.el.textContent = '(nothing heard)';
                u.el.classList.add('muted');
            }
            hook.partial = '';
            if (hook.state === 'hearing' || (hook.state === 'thinking' && !text && !s.resp)) {
                setState('listening');
            }
            break;
        }

        case 'conversation.item.input_audio_transcription.failed': {
            const u = userTurn(s, ev.item_id);
            u.el.classList.remove('pending');
            u.el.classList.add('muted');
            u.el.textContent = '(not understood)';
            showError(ev.error || { message: 'Speech recognition failed.' });
            if (!s.resp) setState('listening');
            break;
        }

        case 'response.created':
            s.resp = { id: ev.response && ev.response.id, text: '', el: null, index: -1, audio: false };
            if (hook.state !== 'hearing') setState('thinking');
            break;

        case 'response.output_audio_transcript.delta':
        case 'response.output_text.delta': {
            const r = replyOf(s, ev.response_id);
            if (r && !s.muted.has(r.id)) addReplyText(r, ev.delta || '');
            break;
        }

        case 'response.output_audio_transcript.done':
        case 'response.output_text.done': {
            const r = replyOf(s, ev.response_id);
            const final = ev.transcript !== undefined ? ev.transcript : ev.text;
            if (r && r.el && typeof final === 'string' && final) {
                r.text = final;
                r.el.textContent = final;
                hook.replies[r.index] = final;
            }
            break;
        }

        case 'response.output_audio.delta': {
            const r = replyOf(s, ev.response_id);
            if (!r || s.muted.has(r.id) || !ev.delta) break;
            const pcm = pcmFromBase64(ev.delta);
            if (pcm.length === 0) break;
            s.player.play(pcm, s.outRate);
            hook.audioChunks++;
            hook.audioSamples += pcm.length;
            if (!r.audio) {
                r.audio = true;
                if (s.tStop) {
                    hook.latencies.push(performance.now() - s.tStop);
                    s.tStop = 0;
                    showStats();
                }
            }
            if (hook.state !== 'hearing') setState('speaking');
            break;
        }

        case 'response.done': {
            const resp = ev.response || {};
            const r = replyOf(s, resp.id);
            if (r && r.el) {
                if (resp.status === 'cancelled' || resp.status === 'incomplete') {
                    r.el.parentElement.classList.add('interrupted');
                }
            }
            const details = resp.status_details;
            if (resp.status === 'failed' && details && details.error) {
                showError(details.error);
            }
            if (r) s.resp = null;
            if (hook.state === 'thinking' || (hook.state === 'speaking' && !audioPlaying(s))) {
                setState('listening');
            }
            break;
        }

        // WebRTC: the reply audio on the track, paced by the server.
        case 'output_audio_buffer.started':
            s.rtcPlaying = true;
            hook.playing = 1;
            hook.audioStarted++;
            if (s.tStop) {
                hook.latencies.push(performance.now() - s.tStop);
                s.tStop = 0;
                showStats();
            }
            if (hook.state !== 'hearing') setState('speaking');
            break;

        case 'output_audio_buffer.stopped':
        case 'output_audio_buffer.cleared':
            s.rtcPlaying = false;
            hook.playing = 0;
            if (ev.type === 'output_audio_buffer.cleared') hook.cleared++;
            if (hook.state === 'speaking' && !s.resp) setState('listening');
            break;

        case 'error':
            showError(ev.error || { message: 'The server reported an error.' });
            break;

        default:
            break; // items, content parts, commits: nothing to show
        }
    }

    // ------------------------------------------------------------ wiring

    ui.talk.addEventListener('click', () => {
        if (sess) stop();
        else start();
    });
    ui.apiKey.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' && !sess) start();
    });
    window.addEventListener('pagehide', () => {
        if (sess) stop();
    });
    showTransport(asked === 'ws' || typeof RTCPeerConnection !== 'function' ? 'ws' : 'webrtc');
    hook.transport = null; // no call yet
    if (!window.AudioWorkletNode || !navigator.mediaDevices) {
        ui.talk.disabled = true;
        showError({
            code: 'unsupported',
            message: 'This browser cannot capture audio here (it needs AudioWorklet and a secure context: https or localhost).',
        });
    }
    setState('idle');
})();
