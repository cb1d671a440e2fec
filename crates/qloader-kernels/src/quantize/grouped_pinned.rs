//! Pins what the grouped quantizer stores: digests of the codes, scales and
//! offsets it produced for synthetic matrices (ragged widths, constant,
//! non-finite and tiny groups) and for real SmolLM2 weights, recorded from
//! the original scalar grid search before it was vectorised. Any change to
//! the search's arithmetic, its order or its rounding shows up here.

use qloader_format::grouped::GroupedLayout;

use super::{fit_group, DenseMatrix, GroupedMatrix};

/// FNV-1a over the stored arrays (codes, then scale and offset bits).
fn digest(q: &GroupedMatrix) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |b: u8| {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    q.codes().iter().for_each(|&b| eat(b));
    for v in q.scales().iter().chain(q.offsets()) {
        v.to_bits().to_le_bytes().into_iter().for_each(&mut eat);
    }
    h
}

fn layouts() -> Vec<GroupedLayout> {
    let mut v = Vec::new();
    for bits in qloader_format::grouped::BITS {
        for group in qloader_format::grouped::GROUPS {
            v.push(GroupedLayout::new(bits, group).expect("valid layout"));
        }
    }
    v
}

/// Bell-shaped values (sum of four uniforms) with a few outliers, some
/// constant, tiny and non-finite stretches: `rows × cols`.
fn synthetic(rows: usize, cols: usize, seed: u32) -> DenseMatrix {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_mul(1664525).wrapping_add(1013904223);
        (state >> 8) as f32 / (1u32 << 24) as f32
    };
    let mut data: Vec<f32> =
        (0..rows * cols).map(|_| ((0..4).map(|_| next()).sum::<f32>() - 2.0) * 0.05).collect();
    for (i, v) in data.iter_mut().enumerate() {
        match i % 997 {
            0 => *v *= 40.0,
            1..=40 if i / 997 % 3 == 1 => *v = 0.125,
            41..=80 if i / 997 % 3 == 2 => *v *= 1e-6,
            _ => {}
        }
    }
    if data.len() > 700 {
        data[650] = f32::NAN;
        data[690] = f32::INFINITY;
    }
    DenseMatrix::new(rows, cols, data).expect("shape")
}

fn importance(cols: usize) -> Vec<f32> {
    (0..cols).map(|c| 0.05 + ((c * 37) % 101) as f32 / 7.0).collect()
}

/// Digests of every layout, plain then weighted, for `w`.
fn digests(w: &DenseMatrix) -> Vec<u64> {
    let imp = importance(w.cols());
    layouts()
        .into_iter()
        .flat_map(|l| {
            [
                digest(&GroupedMatrix::quantize(w, l)),
                digest(&GroupedMatrix::quantize_weighted(w, l, Some(&imp))),
            ]
        })
        .collect()
}

/// Compares digests per item after printing them all (run with
/// `--nocapture` to record new ones).
fn check(got: &[(String, Vec<u64>)], want: &[&[u64]]) {
    for (what, g) in got {
        println!("{what}: &{g:#x?},");
    }
    for ((what, g), w) in got.iter().zip(want) {
        assert_eq!(g, w, "{what}: the quantizer no longer stores what it did");
    }
}

#[test]
fn synthetic_matrices_quantize_as_pinned() {
    let got: Vec<(String, Vec<u64>)> = SYNTHETIC
        .iter()
        .map(|(rows, cols, seed, _)| {
            (format!("{rows}x{cols}"), digests(&synthetic(*rows, *cols, *seed)))
        })
        .collect();
    check(&got, &SYNTHETIC.iter().map(|s| s.3).collect::<Vec<_>>());
}

#[test]
fn fit_group_is_pinned() {
    let w = synthetic(1, 1000, 7);
    let imp = importance(1000);
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for len in [1usize, 2, 5, 8, 13, 31, 32, 33, 64, 100, 127, 128] {
        for start in [0usize, 600, 640, 872] {
            let x = &w.data()[start..start + len];
            for max_code in [3u8, 7, 15, 255] {
                let (s, o) = fit_group(x, &imp[start..start + len], max_code);
                for b in [s.to_bits(), o.to_bits()] {
                    h ^= b as u64;
                    h = h.wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
    }
    check(&[("fit_group".into(), vec![h])], &[&[FIT_GROUP]]);
}

#[test]
fn smollm2_weights_quantize_as_pinned() {
    let path = qloader_format::fixtures::smollm2_gguf();
    if !path.exists() {
        eprintln!("skipping: {} not found (scripts/fetch-fixtures.sh)", path.display());
        return;
    }
    let file = qloader_format::gguf::GgufFile::open(&path).expect("fixture opens");
    let got: Vec<(String, Vec<u64>)> = SMOLLM2
        .iter()
        .map(|(name, rows, _)| {
            let t = file.tensor_f32(name).expect("fixture tensor");
            let cols = *t.shape.last().expect("2-d");
            let w = DenseMatrix::new(*rows, cols, t.data[..rows * cols].to_vec()).expect("shape");
            (name.to_string(), digests(&w))
        })
        .collect();
    check(&got, &SMOLLM2.iter().map(|s| s.2).collect::<Vec<_>>());
}

const FIT_GROUP: u64 = 0xaf586d1355299ead;

const SYNTHETIC: &[(usize, usize, u32, &[u64])] = &[
    (
        3,
        200,
        1,
        &[
            0x386424f77e61a2e7,
            0x22420156d907c701,
            0xbcdc98051a4dca31,
            0x6b532afed989a65d,
            0x77473e6ea616d902,
            0x23af08934843a335,
            0x1a85f394bc92df3b,
            0x1d0d22b7e0aa62f5,
            0xaa246eaf678c27e5,
            0xf5e8957d44da5227,
            0xd82f81db35b2c2f4,
            0xe4ab247fa2325b7d,
            0x36bbc664b5a35549,
            0x7802dd179c257f5b,
            0x9fd5e9efb74040f0,
            0xb4cdbb65c3a4935,
            0x7865aee1745886cb,
            0x57ceb8e3e1581d8c,
            0x54e83ddc5447d116,
            0xa34b6fbe2b6df95b,
            0xe707060b1ad04223,
            0x5c4cf1dc617254bd,
            0x6884ec0d28fdd91b,
            0xe87c70dd3f9f95ae,
        ],
    ),
    (
        5,
        37,
        2,
        &[
            0x35892f0defbe385c,
            0xab7b530dc3a30855,
            0x5930f236db91e021,
            0xb9838e998a8d92af,
            0x5930f236db91e021,
            0xb9838e998a8d92af,
            0xd0b2d03ea864898f,
            0x24cc89d4cf7993f0,
            0x2f9eff2f7e94d6d1,
            0x4d73a824b8e1abb,
            0x2f9eff2f7e94d6d1,
            0x4d73a824b8e1abb,
            0x7e89b4d77366c17a,
            0xd7aecc3a4661e28d,
            0xc53d308a7c9e5512,
            0x4a838075489c8896,
            0xc53d308a7c9e5512,
            0x4a838075489c8896,
            0x9a34d650b52e32cd,
            0x54111429f5bb8bbb,
            0xc177320d17978c11,
            0x353da6c6e84c6063,
            0xc177320d17978c11,
            0x353da6c6e84c6063,
        ],
    ),
    (
        4,
        300,
        3,
        &[
            0xe8410567575508df,
            0x29f7e09bbe7354dd,
            0xa5db9d1f9f15ab58,
            0x51e279d7019b86c2,
            0x2f0cb7777abe273c,
            0xa7565701452ff580,
            0xe672d385fbb9ceb4,
            0x78ddb3c39cb6e587,
            0x404b17bb9398254,
            0x220573e5a6dd53e7,
            0x7d6a40db0ec83df5,
            0xdae8ffc1518be56d,
            0xc7414656e05e358b,
            0x187f21be441cbf63,
            0xa0a528040f6cd83,
            0xb47d6222eed216a7,
            0x8aca4f3101049a61,
            0x7d4d3542856b95bd,
            0xccbb107c5d909b3f,
            0x219ec0ee99d04825,
            0xdd9c5bdc6d666833,
            0xf39499a2ab893c83,
            0xb4c74ebc7532fdb5,
            0x4e62f4ba771474e7,
        ],
    ),
    (
        2,
        1000,
        7,
        &[
            0x65061c74bfbb8819,
            0x69807f56b4721d4b,
            0x5fb4aa1b6772cfad,
            0xe711336c26c49f94,
            0xbb932c804cc05627,
            0xebe802b11a3585c,
            0x92986ed12407d145,
            0x63ec63611cffed75,
            0x496b6818346206af,
            0x359c6037a6bd9fb1,
            0xb78beb5272e16b4,
            0xafbd754bee770fe9,
            0xdc78266fcb82359c,
            0x6cee62258dc65600,
            0xd09e9accbcfd237f,
            0x5964a66de62eb0d7,
            0xfce330bafdf9c703,
            0x5cf56d725faac9cd,
            0xa2593f5e1d250f14,
            0x19a006f2947b61bf,
            0x4463e26dc5c41205,
            0xa7181122ccd0ff9b,
            0xe3e60f011a725387,
            0xcb1a5efb67a108b7,
        ],
    ),
];

const SMOLLM2: &[(&str, usize, &[u64])] = &[
    (
        "blk.0.attn_q.weight",
        48,
        &[
            0xd5c48c201ae4b875,
            0xa417a9c46a4cc5bc,
            0xbe2002a0be9be53b,
            0xfa0309e74b970eba,
            0x763e20504140cb14,
            0xd34bcb55b147359b,
            0x65a1e4230d773754,
            0x4c8eb1133d9ae8b3,
            0x682473180d9e409e,
            0x342803fcbdb618de,
            0x132d311e4c408ddb,
            0x186861885a0449ca,
            0x59243944b57e9545,
            0x59243944b57e9545,
            0x4533a4a7fe07941b,
            0x60476c5afb6a5fce,
            0xbd0826896bf5ec50,
            0xfa3390cf8a3671b5,
            0xd975fa268df41fca,
            0xda7c2bad818f3b79,
            0x4b5f021f224be815,
            0xd7b22e7bac88ed7e,
            0x286b2964dc6c1ada,
            0x6dfa897d8110f79a,
        ],
    ),
    (
        "blk.7.attn_k.weight",
        48,
        &[
            0x58deb0ae0f91bb2,
            0xe830468ab5d3fc75,
            0x3a246e7ad51e69bd,
            0xc1a85096effe8cc6,
            0xc418b8528f4d27ae,
            0x421a2f40c9a9bfba,
            0xcbd41bef82bf7422,
            0xee1b5968d63087e9,
            0xa5f698a955bf9f54,
            0x9f6f39edca2f1fd1,
            0x34867696be8d7506,
            0x6d46eb3d3b480141,
            0xb8b779175b6c9cd6,
            0xb8b779175b6c9cd6,
            0xeb78cfb9074a22eb,
            0x736d63d52a75a98d,
            0x4d1420d1ebcab9f1,
            0xe7f19b0b04a9d773,
            0x89ba8b4d5ec06340,
            0x8e7994d5caec6af9,
            0xe3eaabb3f695c118,
            0x3252a16d8b3f8cf7,
            0x69f74b0f7910a5c5,
            0x245abd2ed78d8704,
        ],
    ),
    (
        "blk.3.ffn_down.weight",
        32,
        &[
            0x2d9601b1248c0b4b,
            0xe9aaa669c4efdb06,
            0x48d1a352ea39c4a2,
            0xf6695a9d73160378,
            0x22494db5346920bd,
            0x8342a2a0908914ba,
            0x275a898aa5b077ac,
            0x85b5a0056a50020c,
            0x981e6372dcd4817f,
            0xa83e9f54eba2437a,
            0xf64263b0a225c53,
            0x1b46d000db771199,
            0x2334ccfa25f8ebeb,
            0x2334ccfa25f8ebeb,
            0x5f0337f6647f6fe3,
            0x873a2406179702ae,
            0xf2828197477ce367,
            0xcbcecf273ab55646,
            0xe74570de06d411e0,
            0xb3af3527adcdad70,
            0xbe4f453923333033,
            0xd636b84d54abf813,
            0x9ca51539ed681f0e,
            0x80e0569eef9e1bb6,
        ],
    ),
    (
        "token_embd.weight",
        64,
        &[
            0x4f0f4f3d5af0219d,
            0x7524d56941409547,
            0x8334c7f5be1c620e,
            0xe1ac0d2c8d32a90f,
            0x2477f4150a423d50,
            0x488eef184e839861,
            0x764eda0191f839a1,
            0x1e31b4d360ec7f17,
            0x92afaf74e275d879,
            0xf4678431560ecb99,
            0x6ebb412e3c7bb77f,
            0xd2e6d65ced6221b4,
            0xd7821cdde545339d,
            0xbf42d73c4f3f6941,
            0x428cb262f1f91db1,
            0xbc0adbaefb269767,
            0x248da27fab4cf22f,
            0xb8815563540b0331,
            0xf0188828c9d7513e,
            0x1c188aa6ac47c009,
            0x4e832ff6792b07c7,
            0x8accc84c5bb24a80,
            0x930609606186151a,
            0xa984cd0a68013a97,
        ],
    ),
];
