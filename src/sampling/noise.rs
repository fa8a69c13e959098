//! Where a sampler's Gaussian noise comes from: the initial x_T and each stochastic step's draw.
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::error::{Error, Result};

/// Standard-normal noise for a batch of images; the sampler asks for x_T first, then for each
/// step that adds noise, in order.
pub trait NoiseSource {
    /// How many images the noise is for (the batch the sampler makes).
    fn images(&self) -> usize;
    /// Fill `out`, the images one after another ([images, C, H, W]), with the next draws.
    fn fill(&mut self, out: &mut [f32]) -> Result<()>;
}

/// One ChaCha8 stream per image: the stream of image `i` is ChaCha8Rng seeded from `seed` with
/// stream number `i`, so an image's noise depends only on (seed, i) and shards of a run
/// ([0, k) and [k, n)) make exactly the images of the whole run.
pub struct SeededNoise {
    streams: Vec<ChaCha8Rng>,
}

impl SeededNoise {
    /// Noise for the `count` images first_image..first_image + count of the run seeded `seed`.
    pub fn new(seed: u64, first_image: u64, count: usize) -> Self {
        let streams = (0..count as u64)
            .map(|i| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(first_image + i);
                rng
            })
            .collect();
        SeededNoise { streams }
    }
}

impl NoiseSource for SeededNoise {
    fn images(&self) -> usize {
        self.streams.len()
    }

    fn fill(&mut self, out: &mut [f32]) -> Result<()> {
        let n = self.streams.len();
        if n == 0 || !out.len().is_multiple_of(n) {
            return Err(Error::invalid(format!("noise for {n} images cannot fill {} values", out.len())));
        }
        for (rng, chunk) in self.streams.iter_mut().zip(out.chunks_exact_mut(out.len() / n)) {
            for v in chunk {
                *v = rng.sample(StandardNormal);
            }
        }
        Ok(())
    }
}
