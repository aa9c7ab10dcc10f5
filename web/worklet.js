// Microphone capture for the voxray demo page, on the audio rendering thread.
//
// Takes the first channel of its input (Float32 at the AudioContext's rate),
// converts it to signed 16-bit little-endian PCM at `outRate` and posts
// blocks of `blockMs` to the page as { pcm: ArrayBuffer, rms: 0..1 }. The
// buffer is transferred, not copied.
//
// When outRate differs from the context's rate (a device rate the server does
// not take, e.g. 96000), samples are resampled by linear interpolation: a
// fallback for rare hardware, good enough for speech recognition, and the
// AudioWorklet scope offers no resampler of its own.
//
// The page sends the string 'stop' to end the processor.

class VoxrayCapture extends AudioWorkletProcessor {
    constructor(options) {
        super();
        const o = (options && options.processorOptions) || {};
        this.outRate = o.outRate || sampleRate; // `sampleRate`: the scope's global
        this.step = sampleRate / this.outRate; // input samples per output sample
        this.blockLen = Math.max(1, Math.round((this.outRate * (o.blockMs || 20)) / 1000));
        this.t = 0; // next output position, in input samples from this quantum's start
        this.prev = 0; // the last input sample of the previous quantum (index -1)
        this.stopped = false;
        this.newBlock();
        this.port.onmessage = (e) => {
            if (e.data === 'stop') this.stopped = true;
        };
    }

    newBlock() {
        this.buf = new ArrayBuffer(this.blockLen * 2);
        this.view = new DataView(this.buf);
        this.fill = 0;
        this.sumSq = 0;
    }

    push(x) {
        if (x > 1) x = 1;
        else if (x < -1) x = -1;
        this.view.setInt16(this.fill * 2, x < 0 ? x * 0x8000 : x * 0x7fff, true);
        this.sumSq += x * x;
        if (++this.fill === this.blockLen) {
            const rms = Math.sqrt(this.sumSq / this.blockLen);
            this.port.postMessage({ pcm: this.buf, rms }, [this.buf]);
            this.newBlock();
        }
    }

    process(inputs) {
        if (this.stopped) return false;
        const ch = inputs[0] && inputs[0][0];
        if (!ch || ch.length === 0) return true; // nothing connected yet
        const n = ch.length;
        if (this.step === 1) {
            for (let i = 0; i < n; i++) this.push(ch[i]);
            return true;
        }
        let t = this.t;
        while (t <= n - 1) {
            const i = Math.floor(t);
            const a = i < 0 ? this.prev : ch[i];
            const b = ch[i + 1 < n ? i + 1 : n - 1];
            this.push(a + (b - a) * (t - i));
            t += this.step;
        }
        this.t = t - n;
        this.prev = ch[n - 1];
        return true;
    }
}

registerProcessor('voxray-capture', VoxrayCapture);
