//! Each de-quantizer against a reference computed here: blocks are encoded
//! element by element from chosen codes and scales (the inverse of the
//! layout, stated independently of the decoder), and the expected values are
//! computed in f64 from the same codes and scales. The lattice types
//! (IQ1/IQ2/IQ3) decode through ggml's grids, so they are checked against
//! llama.cpp's own blocks in `tests/llama_blocks.rs`; here only the grids'
//! shape and that any bytes de-quantize without a panic.

use half::{bf16, f16};

use crate::gguf::{can_dequantize, dequantize, GgmlType};

/// xorshift64*: deterministic pseudo-random numbers for building blocks.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u32) -> u8 {
        ((self.next() >> 33) % u64::from(n)) as u8
    }

    fn codes(&mut self, count: usize, n: u32) -> Vec<u8> {
        (0..count).map(|_| self.below(n)).collect()
    }

    /// A scale in about ±2^-4, rounded to f16 (returned as its f16 bits and value).
    fn half_scale(&mut self) -> ([u8; 2], f64) {
        let x = ((self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) / 8.0;
        let h = f16::from_f32(x);
        (h.to_le_bytes(), f64::from(h.to_f32()))
    }
}

/// De-quantizes `bytes` as `ty` and compares with `want`, allowing f32
/// rounding relative to the largest magnitude in `want`.
fn check(ty: GgmlType, bytes: &[u8], want: &[f64]) {
    let mut got = vec![f32::NAN; want.len()];
    dequantize(ty, bytes, &mut got).unwrap();
    let scale = want.iter().fold(1e-3f64, |m, w| m.max(w.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((f64::from(g) - w).abs() <= 1e-6 * scale, "{ty} element {i}: got {g}, want {w}");
    }
}

const BLOCKS: usize = 3;

#[test]
fn plain_float_types() {
    let values: Vec<f32> = vec![0.0, -0.0, 1.0, -2.5, 65504.0, 1e-3, -7.0e-5, 3.140625];
    let want: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    check(GgmlType::F32, &bytes, &want);

    let bytes: Vec<u8> = values.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect();
    let want: Vec<f64> = values.iter().map(|&v| f64::from(f16::from_f32(v).to_f32())).collect();
    check(GgmlType::F16, &bytes, &want);
    assert_eq!(f16::from_le_bytes([bytes[6], bytes[7]]).to_f32(), -2.5);

    let bytes: Vec<u8> = values.iter().flat_map(|&v| bf16::from_f32(v).to_le_bytes()).collect();
    let want: Vec<f64> = values.iter().map(|&v| f64::from(bf16::from_f32(v).to_f32())).collect();
    check(GgmlType::BF16, &bytes, &want);
    // bf16 is the top half of an f32: 0x3fc0 is 1.5.
    let mut out = [0f32; 1];
    dequantize(GgmlType::BF16, &[0xc0, 0x3f], &mut out).unwrap();
    assert_eq!(out[0], 1.5);
    dequantize(GgmlType::F16, &[0x00, 0x7c], &mut out).unwrap();
    assert_eq!(out[0], f32::INFINITY);

    let bytes: Vec<u8> = [0.25f64, -1e10].iter().flat_map(|v| v.to_le_bytes()).collect();
    check(GgmlType::F64, &bytes, &[0.25, -1e10]);
}

#[test]
fn q4_0_and_q4_1() {
    let mut rng = Rng(1);
    let (mut b0, mut w0, mut b1, mut w1) = (vec![], vec![], vec![], vec![]);
    for _ in 0..BLOCKS {
        let q = rng.codes(32, 16);
        let nibbles: Vec<u8> = (0..16).map(|j| q[j] | (q[j + 16] << 4)).collect();
        let (d, dv) = rng.half_scale();
        let (m, mv) = rng.half_scale();
        b0.extend(d);
        b0.extend(&nibbles);
        w0.extend(q.iter().map(|&q| (f64::from(q) - 8.0) * dv));
        b1.extend(d);
        b1.extend(m);
        b1.extend(&nibbles);
        w1.extend(q.iter().map(|&q| f64::from(q) * dv + mv));
    }
    check(GgmlType::Q4_0, &b0, &w0);
    check(GgmlType::Q4_1, &b1, &w1);
}

#[test]
fn q5_0_and_q5_1() {
    let mut rng = Rng(2);
    let (mut b0, mut w0, mut b1, mut w1) = (vec![], vec![], vec![], vec![]);
    for _ in 0..BLOCKS {
        let q = rng.codes(32, 32);
        let high: u32 = (0..32).map(|e| u32::from(q[e] >> 4) << e).sum();
        let nibbles: Vec<u8> = (0..16).map(|j| (q[j] & 15) | ((q[j + 16] & 15) << 4)).collect();
        let (d, dv) = rng.half_scale();
        let (m, mv) = rng.half_scale();
        b0.extend(d);
        b0.extend(high.to_le_bytes());
        b0.extend(&nibbles);
        w0.extend(q.iter().map(|&q| (f64::from(q) - 16.0) * dv));
        b1.extend(d);
        b1.extend(m);
        b1.extend(high.to_le_bytes());
        b1.extend(&nibbles);
        w1.extend(q.iter().map(|&q| f64::from(q) * dv + mv));
    }
    check(GgmlType::Q5_0, &b0, &w0);
    check(GgmlType::Q5_1, &b1, &w1);
}

#[test]
fn q8_0_q8_1_and_q8_k() {
    let mut rng = Rng(3);
    let (mut b0, mut b1, mut bk, mut w, mut wk) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..BLOCKS {
        let q: Vec<i8> = rng.codes(32, 256).into_iter().map(|c| c as i8).collect();
        let (d, dv) = rng.half_scale();
        b0.extend(d);
        b0.extend(q.iter().map(|&q| q as u8));
        b1.extend(d);
        b1.extend(f16::from_f32(123.0).to_le_bytes());
        b1.extend(q.iter().map(|&q| q as u8));
        w.extend(q.iter().map(|&q| f64::from(q) * dv));

        let q: Vec<i8> = rng.codes(256, 256).into_iter().map(|c| c as i8).collect();
        let d = 0.0123f32;
        bk.extend(d.to_le_bytes());
        bk.extend(q.iter().map(|&q| q as u8));
        for g in q.chunks(16) {
            bk.extend(g.iter().map(|&q| i16::from(q)).sum::<i16>().to_le_bytes());
        }
        wk.extend(q.iter().map(|&q| f64::from(q) * f64::from(d)));
    }
    check(GgmlType::Q8_0, &b0, &w);
    check(GgmlType::Q8_1, &b1, &w);
    check(GgmlType::Q8K, &bk, &wk);
}

#[test]
fn q2_k() {
    let mut rng = Rng(4);
    let (mut bytes, mut want) = (vec![], vec![]);
    for _ in 0..BLOCKS {
        let q = rng.codes(256, 4);
        let sc = rng.codes(16, 16);
        let mn = rng.codes(16, 16);
        let mut codes = [0u8; 64];
        for (e, &q) in q.iter().enumerate() {
            codes[32 * (e / 128) + e % 32] |= q << (2 * ((e % 128) / 32));
        }
        let (d, dv) = rng.half_scale();
        let (dmin, mv) = rng.half_scale();
        bytes.extend((0..16).map(|g| sc[g] | (mn[g] << 4)));
        bytes.extend(codes);
        bytes.extend(d);
        bytes.extend(dmin);
        want.extend(
            (0..256)
                .map(|e| dv * f64::from(sc[e / 16]) * f64::from(q[e]) - mv * f64::from(mn[e / 16])),
        );
    }
    check(GgmlType::Q2K, &bytes, &want);
}

#[test]
fn q3_k() {
    let mut rng = Rng(5);
    let (mut bytes, mut want) = (vec![], vec![]);
    for _ in 0..BLOCKS {
        // 3-bit codes c stand for c - 4; 6-bit scales s stand for s - 32.
        let c = rng.codes(256, 8);
        let s = rng.codes(16, 64);
        let (mut mask, mut codes, mut packed) = ([0u8; 32], [0u8; 64], [0u8; 12]);
        for (e, &c) in c.iter().enumerate() {
            let (half, group) = (e / 128, (e % 128) / 32);
            mask[e % 32] |= (c >> 2) << (4 * half + group);
            codes[32 * half + e % 32] |= (c & 3) << (2 * group);
        }
        for (k, &s) in s.iter().enumerate() {
            if k < 8 {
                packed[k] |= s & 15;
            } else {
                packed[k - 8] |= (s & 15) << 4;
            }
            packed[8 + k % 4] |= (s >> 4) << (2 * (k / 4));
        }
        let (d, dv) = rng.half_scale();
        bytes.extend(mask);
        bytes.extend(codes);
        bytes.extend(packed);
        bytes.extend(d);
        want.extend((0..256).map(|e| dv * (f64::from(s[e / 16]) - 32.0) * (f64::from(c[e]) - 4.0)));
    }
    check(GgmlType::Q3K, &bytes, &want);
}

/// Packs eight 6-bit scales and minimums the Q4_K/Q5_K way.
fn pack_k_scales(sc: &[u8], mn: &[u8]) -> [u8; 12] {
    let mut p = [0u8; 12];
    for j in 0..8 {
        if j < 4 {
            p[j] |= sc[j];
            p[j + 4] |= mn[j];
        } else {
            p[j + 4] |= (sc[j] & 15) | ((mn[j] & 15) << 4);
            p[j - 4] |= (sc[j] >> 4) << 6;
            p[j] |= (mn[j] >> 4) << 6;
        }
    }
    p
}

#[test]
fn q4_k_and_q5_k() {
    let mut rng = Rng(6);
    let (mut b4, mut w4, mut b5, mut w5) = (vec![], vec![], vec![], vec![]);
    for _ in 0..BLOCKS {
        let q = rng.codes(256, 32);
        let sc = rng.codes(8, 64);
        let mn = rng.codes(8, 64);
        let (d, dv) = rng.half_scale();
        let (dmin, mv) = rng.half_scale();
        let (mut low, mut high) = ([0u8; 128], [0u8; 32]);
        for (e, &q) in q.iter().enumerate() {
            low[32 * (e / 64) + e % 32] |= (q & 15) << (4 * ((e % 64) / 32));
            high[e % 32] |= (q >> 4) << (e / 32);
        }
        let packed = pack_k_scales(&sc, &mn);
        let value = |e: usize, q: u8| {
            dv * f64::from(sc[e / 32]) * f64::from(q) - mv * f64::from(mn[e / 32])
        };
        b4.extend(d);
        b4.extend(dmin);
        b4.extend(packed);
        b4.extend(low);
        w4.extend(q.iter().enumerate().map(|(e, &q)| value(e, q & 15)));
        b5.extend(d);
        b5.extend(dmin);
        b5.extend(packed);
        b5.extend(high);
        b5.extend(low);
        w5.extend(q.iter().enumerate().map(|(e, &q)| value(e, q)));
    }
    check(GgmlType::Q4K, &b4, &w4);
    check(GgmlType::Q5K, &b5, &w5);
}

/// A Q4_K block written out byte by byte, with values worked out by hand.
#[test]
fn q4_k_hand_built_block() {
    let mut b = vec![0u8; 144];
    b[0..2].copy_from_slice(&f16::from_f32(1.0).to_le_bytes()); // d
    b[2..4].copy_from_slice(&f16::from_f32(0.5).to_le_bytes()); // dmin
                                                                // Sub-block 0: scale 1, min 2 (low six bits of bytes 0 and 4).
                                                                // Sub-block 5: scale 35 = 0b10_0011, min 18 = 0b01_0010: low nibbles in
                                                                // byte 9 (0x23), top bits in the spare bits of byte 1 (scale) and 5 (min).
    b[4..16].copy_from_slice(&[0x01, 0x80, 0, 0, 0x02, 0x40, 0, 0, 0, 0x23, 0, 0]);
    b[16] = 0x07; // element 0 (low nibble of code byte 0) is 7
    b[16 + 64 + 3] = 0xa0; // element 128 + 32 + 3 (high nibble, chunk 2) is 10
    let mut out = [f32::NAN; 256];
    dequantize(GgmlType::Q4K, &b, &mut out).unwrap();
    assert_eq!(out[0], 1.0 * 1.0 * 7.0 - 0.5 * 2.0);
    assert_eq!(out[1], -1.0);
    assert_eq!(out[31], -1.0);
    assert_eq!(out[32], 0.0); // sub-block 1: scale 0, min 0
    assert_eq!(out[163], 35.0 * 10.0 - 0.5 * 18.0);
    assert_eq!(out[160], -9.0);
    assert_eq!(out[191], -9.0);
    assert_eq!(out[131], 0.0);
    assert_eq!(out[255], 0.0);
}

#[test]
fn q6_k() {
    let mut rng = Rng(7);
    let (mut bytes, mut want) = (vec![], vec![]);
    for _ in 0..BLOCKS {
        // 6-bit codes c stand for c - 32; scales are signed bytes.
        let c = rng.codes(256, 64);
        let sc: Vec<i8> = rng.codes(16, 256).into_iter().map(|s| s as i8).collect();
        let (mut low, mut high) = ([0u8; 128], [0u8; 64]);
        for (e, &c) in c.iter().enumerate() {
            let (half, quarter, l) = (e / 128, (e % 128) / 32, e % 32);
            low[64 * half + 32 * (quarter % 2) + l] |= (c & 15) << (4 * (quarter / 2));
            high[32 * half + l] |= (c >> 4) << (2 * quarter);
        }
        let (d, dv) = rng.half_scale();
        bytes.extend(low);
        bytes.extend(high);
        bytes.extend(sc.iter().map(|&s| s as u8));
        bytes.extend(d);
        want.extend((0..256).map(|e| dv * f64::from(sc[e / 16]) * (f64::from(c[e]) - 32.0)));
    }
    check(GgmlType::Q6K, &bytes, &want);
}

#[test]
fn lengths_and_unsupported_types_are_errors() {
    let mut out = [0f32; 32];
    let err = dequantize(GgmlType::Q8_0, &[0; 33], &mut out).unwrap_err();
    assert!(err.contains("take 1 blocks of 34 bytes, but 33 bytes were given"), "{err}");
    let err = dequantize(GgmlType::Q8_0, &[0; 34], &mut out[..31]).unwrap_err();
    assert!(err.contains("31 elements is not a multiple of the Q8_0 block size 32"), "{err}");
    let err = dequantize(GgmlType::MXFP4, &[0; 17], &mut [0f32; 32]).unwrap_err();
    assert_eq!(err, "type MXFP4 is recognised but cannot be de-quantized yet");
    assert!(dequantize(GgmlType::F32, &[], &mut []).is_ok());
    for ty in GgmlType::ALL {
        let n = ty.block_elements();
        let result = dequantize(ty, &vec![0; ty.block_bytes()], &mut vec![f32::NAN; n]);
        assert_eq!(result.is_ok(), can_dequantize(ty), "{ty}");
    }
}

#[test]
fn tq1_0_and_tq2_0() {
    let mut rng = Rng(9);
    // TQ1_0: digit n (most significant first) of a byte holds element
    // 32n + m (bytes 0..32), 160 + 16n + m (bytes 32..48) or 240 + 4n + m
    // (the last four bytes, four digits and a zero). A byte holds its digits
    // as ceil(value * 256 / 243).
    let (mut bytes, mut want) = (vec![], vec![]);
    for _ in 0..BLOCKS {
        let t = rng.codes(256, 3);
        let pack = |digits: &[u8]| -> u8 {
            let v = digits.iter().fold(0u16, |v, &t| v * 3 + u16::from(t));
            (v * 256).div_ceil(243) as u8
        };
        let mut qs = vec![];
        qs.extend((0..32).map(|m| pack(&[0, 1, 2, 3, 4].map(|n| t[32 * n + m]))));
        qs.extend((0..16).map(|m| pack(&[0, 1, 2, 3, 4].map(|n| t[160 + 16 * n + m]))));
        qs.extend((0..4).map(|m| pack(&[t[240 + m], t[244 + m], t[248 + m], t[252 + m], 0])));
        let (d, dv) = rng.half_scale();
        bytes.extend(qs);
        bytes.extend(d);
        want.extend(t.iter().map(|&t| (f64::from(t) - 1.0) * dv));
    }
    check(GgmlType::TQ1_0, &bytes, &want);

    // TQ2_0: bits 2l..2l + 2 of byte 32h + m hold element 128h + 32l + m.
    let (mut bytes, mut want) = (vec![], vec![]);
    for _ in 0..BLOCKS {
        let t = rng.codes(256, 4);
        let mut qs = [0u8; 64];
        for (e, &c) in t.iter().enumerate() {
            let (h, l, m) = (e / 128, (e % 128) / 32, e % 32);
            qs[32 * h + m] |= c << (2 * l);
        }
        let (d, dv) = rng.half_scale();
        bytes.extend(qs);
        bytes.extend(d);
        want.extend(t.iter().map(|&t| (f64::from(t) - 1.0) * dv));
    }
    check(GgmlType::TQ2_0, &bytes, &want);
}

#[test]
fn iq_tables_have_ggml_shape() {
    use crate::gguf::iq_grids::*;
    for (i, &s) in KSIGNS_IQ2XS.iter().enumerate() {
        assert_eq!(usize::from(s & 127), i);
        assert_eq!(s.count_ones() % 2, 0, "entry {i}: even number of negated elements");
    }
    let bytes = |g: &[u64]| g.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
    let distinct = |g: &[u64]| g.iter().collect::<std::collections::HashSet<_>>().len() == g.len();
    for grid in [&IQ2XXS_GRID[..], &IQ2XS_GRID, &IQ2S_GRID] {
        assert!(bytes(grid).iter().all(|b| [8, 25, 43].contains(b)) && distinct(grid));
    }
    assert!(bytes(&IQ1S_GRID).iter().all(|&b| (-1..=1).contains(&(b as i8))));
    assert!(distinct(&IQ1S_GRID));
    let wide = |g: &[u32]| g.iter().map(|&v| u64::from(v)).collect::<Vec<_>>();
    let (xxs, s) = (wide(&IQ3XXS_GRID), wide(&IQ3S_GRID));
    assert!(distinct(&xxs) && distinct(&s));
    let levels = [4, 12, 20, 28, 36, 44, 52, 62];
    assert!(IQ3XXS_GRID.iter().flat_map(|v| v.to_le_bytes()).all(|b| levels.contains(&b)));
    assert!(IQ3S_GRID.iter().flat_map(|v| v.to_le_bytes()).all(|b| b % 2 == 1 && b <= 15));
}

#[test]
fn any_bytes_of_a_supported_type_dequantize() {
    let mut rng = Rng(11);
    for ty in GgmlType::ALL.into_iter().filter(|&t| can_dequantize(t)) {
        let n = BLOCKS * ty.block_elements();
        for fill in [None, Some(0xff), Some(0x7c)] {
            let bytes: Vec<u8> = (0..BLOCKS * ty.block_bytes())
                .map(|_| fill.unwrap_or_else(|| rng.below(256)))
                .collect();
            let mut out = vec![f32::NAN; n];
            dequantize(ty, &bytes, &mut out).unwrap();
        }
    }
}
