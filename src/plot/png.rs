//! A minimal PNG encoder: 8-bit RGB, one IDAT chunk, rows unfiltered. Plots are mostly flat
//! colour, which deflate handles well on its own: choosing a filter per row (libpng's
//! heuristic) made the samples only 5% smaller, for ten times the encoding time.

use std::io::Write;

use flate2::Compression;
use flate2::write::ZlibEncoder;

const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n'];

/// Encode `rgb` (`width * height * 3` bytes, rows top to bottom) as a PNG file.
///
/// # Panics
/// If a side is 0 (PNG has no empty images) or `rgb` does not hold `width * height` pixels.
pub fn encode_rgb8(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    assert!(
        width > 0 && height > 0,
        "a PNG image has at least one pixel"
    );
    let stride = width as usize * 3;
    assert_eq!(rgb.len(), stride * height as usize, "pixel buffer size");

    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), compression 0 (deflate), filter method 0, no interlace.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);

    // Each row is prefixed with its filter type, 0 (None).
    let mut filtered = Vec::with_capacity((stride + 1) * height as usize);
    for row in rgb.chunks_exact(stride) {
        filtered.push(0);
        filtered.extend_from_slice(row);
    }

    let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
    zlib.write_all(&filtered)
        .expect("writing to a Vec cannot fail");
    let idat = zlib.finish().expect("writing to a Vec cannot fail");

    let mut png = Vec::with_capacity(idat.len() + 64);
    png.extend_from_slice(&SIGNATURE);
    write_chunk(&mut png, b"IHDR", &ihdr);
    write_chunk(&mut png, b"IDAT", &idat);
    write_chunk(&mut png, b"IEND", &[]);
    png
}

fn write_chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let len = u32::try_from(data.len()).expect("a PNG chunk is under 4 GiB");
    png.extend_from_slice(&len.to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    png.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// A PNG reader written apart from the encoder above, for tests: it checks the signature,
/// every chunk's CRC and the IHDR fields, inflates the IDAT data and undoes the filters.
#[cfg(test)]
pub(crate) mod decode {
    use std::io::Read;

    /// A decoded 8-bit RGB image.
    pub struct Image {
        pub width: u32,
        pub height: u32,
        pub rgb: Vec<u8>,
    }

    impl std::fmt::Debug for Image {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Image({}x{})", self.width, self.height)
        }
    }

    impl Image {
        pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
            let i = (y as usize * self.width as usize + x as usize) * 3;
            [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
        }
    }

    pub fn decode(png: &[u8]) -> Image {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "signature");
        let mut at = 8;
        let mut kinds = Vec::new();
        let (mut width, mut height) = (0, 0);
        let mut idat = Vec::new();
        while at < png.len() {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            let kind = &png[at + 4..at + 8];
            let data = &png[at + 8..at + 8 + len];
            let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
            assert_eq!(
                crc32fast::hash(&png[at + 4..at + 8 + len]),
                crc,
                "CRC of {kind:?}"
            );
            match kind {
                b"IHDR" => {
                    width = u32::from_be_bytes(data[0..4].try_into().unwrap());
                    height = u32::from_be_bytes(data[4..8].try_into().unwrap());
                    assert_eq!(&data[8..], &[8, 2, 0, 0, 0], "8-bit RGB, no interlace");
                }
                b"IDAT" => idat.extend_from_slice(data),
                _ => {}
            }
            kinds.push(String::from_utf8_lossy(kind).into_owned());
            at += 12 + len;
        }
        assert_eq!(at, png.len(), "no trailing bytes");
        assert_eq!(kinds.first().map(String::as_str), Some("IHDR"));
        assert_eq!(kinds.last().map(String::as_str), Some("IEND"));

        let mut raw = Vec::new();
        flate2::read::ZlibDecoder::new(&idat[..])
            .read_to_end(&mut raw)
            .expect("IDAT inflates");
        let stride = width as usize * 3;
        assert_eq!(raw.len(), (stride + 1) * height as usize, "inflated size");
        let mut rgb = vec![0u8; stride * height as usize];
        for y in 0..height as usize {
            let filter = raw[y * (stride + 1)];
            let line = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
            for i in 0..stride {
                let a = if i >= 3 { rgb[y * stride + i - 3] } else { 0 };
                let b = if y > 0 { rgb[(y - 1) * stride + i] } else { 0 };
                let c = if y > 0 && i >= 3 {
                    rgb[(y - 1) * stride + i - 3]
                } else {
                    0
                };
                let add = match filter {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => ((a as u16 + b as u16) / 2) as u8,
                    4 => paeth(a, b, c),
                    other => panic!("bad filter type {other}"),
                };
                rgb[y * stride + i] = line[i].wrapping_add(add);
            }
        }
        Image { width, height, rgb }
    }

    /// The specification's Paeth predictor, restated so the check does not reuse the encoder.
    fn paeth(a: u8, b: u8, c: u8) -> u8 {
        let p = a as i32 + b as i32 - c as i32;
        let distances = [
            (p - a as i32).abs(),
            (p - b as i32).abs(),
            (p - c as i32).abs(),
        ];
        if distances[0] <= distances[1] && distances[0] <= distances[2] {
            a
        } else if distances[1] <= distances[2] {
            b
        } else {
            c
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_an_independent_decoder() {
        let (w, h) = (37, 23);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        let png = encode_rgb8(w, h, &rgb);
        let image = decode::decode(&png);
        assert_eq!((image.width, image.height), (w, h));
        assert_eq!(image.rgb, rgb);
    }

    #[test]
    fn flat_images_compress_well() {
        let rgb = vec![255u8; 400 * 300 * 3];
        let png = encode_rgb8(400, 300, &rgb);
        assert!(png.len() < 2_000, "{} bytes", png.len());
        assert_eq!(decode::decode(&png).pixel(399, 299), [255, 255, 255]);
    }
}
