//! A tenant's own waiting music: `GET`/`PUT`/`DELETE /api/v1/admin/music`.
//! The admin sends a WAV file (PCM 8 to 32 bits or float, any rate, mono
//! or stereo, up to 5 minutes and 8 MiB); it is mixed to mono and converted
//! to 8 kHz once, here, so the media plane only loops samples.

use crate::admin::admin;
use crate::errors::{api_error, internal};
use crate::App;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use seatline_media::music::CLIP_MAX_SAMPLES;
use std::sync::Arc;

/// The largest file an admin may send.
pub const FILE_LIMIT: usize = 8 * 1024 * 1024;

pub fn routes() -> Router<App> {
    Router::new().route(
        "/api/v1/admin/music",
        get(get_music)
            .put(put_music)
            .delete(delete_music)
            .layer(DefaultBodyLimit::max(FILE_LIMIT)),
    )
}

/// Reads a WAV file into 8 kHz mono samples, or says why not.
pub fn decode_wav(bytes: &[u8]) -> Result<Vec<i16>, String> {
    let mut r = hound::WavReader::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a WAV file ({e})"))?;
    let spec = r.spec();
    let channels = usize::from(spec.channels);
    if channels == 0 || channels > 8 || !(4_000..=192_000).contains(&spec.sample_rate) {
        return Err("a WAV of 1 to 8 channels at 4 to 192 kHz".into());
    }
    // The whole file may not be longer than 5 minutes.
    let frames = r.duration() as usize;
    if frames as u64 * 8_000 > CLIP_MAX_SAMPLES as u64 * u64::from(spec.sample_rate) {
        return Err("at most 5 minutes of audio".into());
    }
    let as_f32: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(|e| format!("a broken sample ({e})"))?,
        hound::SampleFormat::Int => {
            let scale = 2f32.powi(i32::from(spec.bits_per_sample) - 1);
            r.samples::<i32>()
                .map(|s| s.map(|v| v as f32 / scale))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("a broken sample ({e})"))?
        }
    };
    let mono: Vec<f32> = as_f32
        .chunks_exact(channels)
        .map(|c| c.iter().sum::<f32>() / channels as f32)
        .collect();
    if mono.is_empty() {
        return Err("the file holds no audio".into());
    }
    // To 8 kHz: each output sample is the mean of the input samples it
    // covers (a box low-pass, enough against aliasing for music on G.711),
    // or, upsampling, a straight line between its neighbours.
    let ratio = f64::from(spec.sample_rate) / 8_000.0;
    let out_len = ((mono.len() as f64 / ratio).floor() as usize).clamp(1, CLIP_MAX_SAMPLES);
    let out = (0..out_len)
        .map(|i| {
            let start = i as f64 * ratio;
            let v = if ratio > 1.0 {
                let (a, b) = (start as usize, ((start + ratio) as usize).min(mono.len()));
                let span = &mono[a..b.max(a + 1).min(mono.len())];
                span.iter().sum::<f32>() / span.len() as f32
            } else {
                let a = (start as usize).min(mono.len() - 1);
                let b = (a + 1).min(mono.len() - 1);
                let t = (start - a as f64) as f32;
                mono[a] * (1.0 - t) + mono[b] * t
            };
            (v.clamp(-1.0, 1.0) * 32_767.0) as i16
        })
        .collect();
    Ok(out)
}

async fn get_music(State(app): State<App>, headers: HeaderMap) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match app.store.tenant_musics().await {
        Ok(all) => {
            let mine = all.into_iter().find(|(t, _)| *t == user.tenant_id);
            Json(match mine {
                Some((_, s)) => {
                    serde_json::json!({"source": "tenant", "seconds": s.len() as f64 / 8_000.0})
                }
                None => serde_json::json!({"source": "builtin", "seconds": null}),
            })
            .into_response()
        }
        Err(e) => internal(e),
    }
}

async fn put_music(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let samples = match decode_wav(&body) {
        Ok(s) => s,
        Err(why) => return api_error(StatusCode::BAD_REQUEST, "badMusic", &why),
    };
    if let Err(e) = app
        .store
        .set_tenant_music(user.tenant_id, &samples, seatline_store::now_ms())
        .await
    {
        return internal(e);
    }
    let seconds = samples.len() as f64 / 8_000.0;
    app.hub
        .set_tenant_music(user.tenant_id, Some(Arc::from(samples)));
    app.bus
        .publish(crate::bus::Change::Reload {
            tenant_id: user.tenant_id,
            what: crate::bus::Reload::Music,
        })
        .await;
    Json(serde_json::json!({"source": "tenant", "seconds": seconds})).into_response()
}

async fn delete_music(State(app): State<App>, headers: HeaderMap) -> Response {
    let user = match admin(&app, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match app.store.delete_tenant_music(user.tenant_id).await {
        Ok(_) => {
            app.hub.set_tenant_music(user.tenant_id, None);
            app.bus
                .publish(crate::bus::Change::Reload {
                    tenant_id: user.tenant_id,
                    what: crate::bus::Reload::Music,
                })
                .await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => internal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(
        rate: u32,
        channels: u16,
        bits: u16,
        float: bool,
        frames: usize,
        f: impl Fn(usize) -> f32,
    ) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: if float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        };
        let mut out = std::io::Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
        for i in 0..frames {
            for _ in 0..channels {
                let v = f(i);
                if float {
                    w.write_sample(v).unwrap();
                } else {
                    let max = 2f32.powi(i32::from(bits) - 1) - 1.0;
                    w.write_sample((v * max) as i32).unwrap();
                }
            }
        }
        w.finalize().unwrap();
        out.into_inner()
    }

    fn rms(s: &[i16]) -> f64 {
        (s.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
    }

    #[test]
    fn wavs_of_any_rate_and_layout_become_8_khz_mono_at_the_same_level() {
        let sine = |rate: f64| {
            move |i: usize| {
                (0.5 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / rate).sin()) as f32
            }
        };
        for (rate, channels, bits, float) in [
            (8_000, 1, 16, false),
            (16_000, 2, 16, false),
            (44_100, 2, 24, false),
            (48_000, 1, 32, true),
            (11_025, 1, 8, false),
        ] {
            let bytes = wav(
                rate,
                channels,
                bits,
                float,
                rate as usize * 2,
                sine(f64::from(rate)),
            );
            let s = decode_wav(&bytes).unwrap();
            assert!(
                (15_990..=16_000).contains(&s.len()),
                "{rate} Hz: {} samples",
                s.len()
            );
            // A 0.5 sine has an RMS of 0.354 of full scale.
            let level = rms(&s) / 32_767.0;
            assert!(
                (0.33..0.37).contains(&level),
                "{rate} Hz x{channels} {bits} bit: level {level}"
            );
        }
    }

    #[test]
    fn what_is_not_a_usable_wav_is_refused_with_the_reason() {
        assert!(decode_wav(b"RIFF nonsense")
            .unwrap_err()
            .contains("not a WAV"));
        assert!(decode_wav(&[]).unwrap_err().contains("not a WAV"));
        let empty = wav(8_000, 1, 16, false, 0, |_| 0.0);
        assert!(decode_wav(&empty).unwrap_err().contains("no audio"));
        // 5 minutes and one second at 8 kHz.
        let long = wav(8_000, 1, 16, false, 301 * 8_000, |_| 0.1);
        assert!(decode_wav(&long).unwrap_err().contains("5 minutes"));
        let five = wav(8_000, 1, 16, false, 300 * 8_000, |_| 0.1);
        assert_eq!(decode_wav(&five).unwrap().len(), 300 * 8_000);
    }
}
