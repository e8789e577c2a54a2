"""Masked autoencoder (MAE) on the course ViT: hide most patches, reconstruct their pixels.

Chapter 05 (generative objectives); He et al. 2022, "Masked autoencoders are scalable vision
learners".  Two ideas make MAE work and make it fast:

* the **encoder sees only the visible patches** (25% at the default ratio 0.75): no mask tokens
  enter it, so its cost falls with the mask ratio (``bench/mae_speed.py`` measures it);
* a **light decoder** (narrower, shallower) gets the encoded visible tokens plus one shared,
  learned mask token at every removed position, adds its *own* position embeddings and predicts
  the pixels of every patch; the loss counts the removed patches only.

Named stages (MAE's names), each callable on its own::

    patchify(images (B,3,H,W)) -> (B, N, K)              K = P*P*3
    random_masking(tokens (B,N,D), ratio) -> (kept (B,N_keep,D), mask (B,N) 1=removed, ids_restore)
    forward_encoder(images, ratio) -> (latent (B, 1+N_keep, D), mask, ids_restore)
    forward_decoder(latent, ids_restore) -> pred (B, N, K)
    forward_loss(images, pred, mask) -> () float

``forward(images)`` runs them all and returns :class:`MAEOutput`.  The encoder is a
:class:`~vlm_course.models.vit.VisionTransformer` (its ``patch_embed``, class token, position
embeddings, ``ln_pre``, blocks and ``ln_post`` as MAE's final norm).  What MAE does not learn is a
buffer: the fixed 2-D sine-cosine position embeddings of encoder and decoder, and the encoder's
``proj`` (the identity: MAE trains no projection head).  ``encode_image`` gives
``(B, D)`` features for linear probing: the mean of the encoded patch tokens, nothing masked.

Imports: the masking and the loss are the pure functions of
:mod:`vlm_course.objectives.masking` and :mod:`vlm_course.objectives.generative` (torch-only
modules that import nothing from the course), so the model and the chapter's functions are one
code path.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn

from vlm_course.objectives.generative import mae_loss
from vlm_course.objectives.masking import RandomMasking, random_masking, restore_order

from .transformer import Transformer
from .vit import VisionTransformer, ViTConfig

__all__ = ["MAEConfig", "MAEOutput", "MaskedAutoencoder", "sincos_position_embedding"]


def sincos_position_embedding(grid_size: int, dim: int, cls_token: bool = True) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embeddings (MAE; Vaswani et al. 2017 in two dimensions).

    Half of the ``dim`` channels encode the patch's row, half its column, each as sines and
    cosines of ``position / 10000**(2i / (dim / 2))``.  Returns ``(1 + g*g, dim)`` (a zero row for
    the class token first when ``cls_token``) in row-major patch order.
    Raises ``ValueError`` if ``dim`` is not divisible by 4.
    """
    if dim % 4:
        raise ValueError(f"dim must be divisible by 4 for 2-D sine-cosine embeddings, got {dim}")
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)  # (dim/4,)
    rows, cols = torch.meshgrid(torch.arange(grid_size, dtype=torch.float64),
                                torch.arange(grid_size, dtype=torch.float64), indexing="ij")

    def encode(pos: torch.Tensor) -> torch.Tensor:  # (g*g,) -> (g*g, dim/2)
        angles = pos.reshape(-1, 1) * omega[None]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    emb = torch.cat([encode(rows), encode(cols)], dim=1).float()  # (g*g, dim)
    return torch.cat([torch.zeros(1, dim), emb]) if cls_token else emb


@dataclass
class MAEConfig:
    """A masked autoencoder: a ViT encoder and a light transformer decoder.

    encoder: the ViT (its ``output_dim`` is forced to its ``width``: the projection is identity).
    decoder_width / decoder_layers / decoder_heads: the decoder (MAE: narrower and shallower).
    mask_ratio: default fraction of patches removed (MAE: 0.75).
    norm_pix_loss: targets normalised per patch (MAE's variant; see ``objectives.generative``).
    """

    encoder: ViTConfig = field(default_factory=lambda: ViTConfig(image_size=48, layers=4))
    decoder_width: int = 32
    decoder_layers: int = 2
    decoder_heads: int = 4
    mask_ratio: float = 0.75
    norm_pix_loss: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.encoder, dict):
            self.encoder = ViTConfig(**self.encoder)
        if not isinstance(self.encoder, ViTConfig):
            raise TypeError(f"encoder must be a ViTConfig, got {type(self.encoder).__name__}")
        self.encoder = dataclasses.replace(self.encoder, output_dim=self.encoder.width)
        for name in ("decoder_width", "decoder_layers", "decoder_heads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.decoder_width % self.decoder_heads:
            raise ValueError(f"decoder_width must be divisible by decoder_heads, got "
                             f"{self.decoder_width} and {self.decoder_heads}")
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must lie in [0, 1), got {self.mask_ratio}")

    @classmethod
    def tiny(cls, **overrides) -> MAEConfig:
        """48x48 images, 8x8 patches (36), encoder width 64 x 4 layers, decoder 32 x 2."""
        return dataclasses.replace(cls(), **overrides)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> MAEConfig:
        return cls(**{**d, "encoder": ViTConfig(**d["encoder"])})


class MAEOutput(NamedTuple):
    """``forward``'s result: loss ``()``, pred ``(B, N, K)``, mask ``(B, N)`` (1 = removed),
    ids_restore ``(B, N)``."""

    loss: torch.Tensor
    pred: torch.Tensor
    mask: torch.Tensor
    ids_restore: torch.Tensor


class MaskedAutoencoder(nn.Module):
    """MAE with named stages (module docstring): ``MaskedAutoencoder(MAEConfig.tiny())``."""

    def __init__(self, config: MAEConfig):
        super().__init__()
        if not isinstance(config, MAEConfig):
            raise TypeError(f"config must be an MAEConfig, got {type(config).__name__}")
        self.config = config
        enc = config.encoder
        self.encoder = VisionTransformer(enc)
        # MAE fixes what it does not learn: sine-cosine positions and no projection head.  Both
        # become buffers (saved with the weights, never trained).
        del self.encoder.positional_embedding, self.encoder.proj
        self.encoder.register_buffer("positional_embedding",
                                     sincos_position_embedding(enc.grid_size, enc.width))
        self.encoder.register_buffer("proj", torch.eye(enc.width))
        Dd, K = config.decoder_width, enc.patch_size**2 * enc.in_channels
        self.decoder_embed = nn.Linear(enc.width, Dd)
        self.mask_token = nn.Parameter(torch.zeros(Dd))
        self.register_buffer("decoder_pos_embed", sincos_position_embedding(enc.grid_size, Dd))
        self.decoder = Transformer(Dd, config.decoder_layers, config.decoder_heads,
                                   activation=enc.activation, ln_eps=enc.ln_eps)
        self.decoder_norm = nn.LayerNorm(Dd, eps=enc.ln_eps)
        self.decoder_pred = nn.Linear(Dd, K)
        nn.init.normal_(self.mask_token, std=0.02)
        # start by predicting (almost) 0 everywhere: a head with the default init makes large
        # outputs that first push the model into predicting the mean patch, a plateau it leaves
        # only slowly (measured while building chapter 05)
        nn.init.normal_(self.decoder_pred.weight, std=1e-3)
        nn.init.zeros_(self.decoder_pred.bias)

    @property
    def num_patches(self) -> int:
        return self.config.encoder.num_patches

    # ------------------------------------------------------------------ stages
    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W) -> (B, N, P*P*3)``; raises ``ValueError`` for a wrong image shape."""
        return self.encoder.patchify(images)

    def random_masking(self, tokens: torch.Tensor, mask_ratio: float | None = None, *,
                       noise: torch.Tensor | None = None,
                       generator: torch.Generator | None = None) -> RandomMasking:
        """:func:`vlm_course.objectives.masking.random_masking` at ``mask_ratio`` (default:
        the config's)."""
        ratio = self.config.mask_ratio if mask_ratio is None else mask_ratio
        return random_masking(tokens, ratio, noise=noise, generator=generator)

    def forward_encoder(self, images: torch.Tensor, mask_ratio: float | None = None, *,
                        noise: torch.Tensor | None = None,
                        generator: torch.Generator | None = None):
        """Encode the visible patches only.

        Position embeddings are added *before* masking (each kept token remembers where it was);
        the class token is prepended after.  Returns ``(latent (B, 1 + N_keep, D), mask (B, N)
        1 = removed, ids_restore (B, N))``; ``latent`` is after the final norm (``ln_post``).
        """
        vit = self.encoder
        x = vit.add_position(vit.embed_patches(self.patchify(images)))  # (B, N, D)
        kept, mask, ids_restore, _ = self.random_masking(x, mask_ratio, noise=noise,
                                                         generator=generator)
        tokens = vit.forward_tokens(vit.prepend_class_token(kept))  # (B, 1 + N_keep, D)
        return vit.ln_post(tokens), mask, ids_restore

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """``(B, 1 + N_keep, D), (B, N) -> (B, N, K)``: pixels predicted for every patch.

        Visible tokens are projected to the decoder width, a mask token fills every removed
        position, the original order is restored, the decoder's own position embeddings are
        added, then the blocks, a norm and a linear map to ``K`` pixel values per patch.
        """
        N = self.num_patches
        if latent.dim() != 3 or ids_restore.shape != (latent.shape[0], N):
            raise ValueError(f"latent must be (B, 1 + N_keep, D) and ids_restore (B, N={N}), got "
                             f"{tuple(latent.shape)} and {tuple(ids_restore.shape)}")
        x = self.decoder_embed(latent)  # (B, 1 + N_keep, Dd)
        patches = restore_order(x[:, 1:], ids_restore, self.mask_token)  # (B, N, Dd)
        x = torch.cat([x[:, :1], patches], dim=1) + self.decoder_pos_embed.to(x.dtype)
        x = self.decoder_norm(self.decoder(x))
        return self.decoder_pred(x[:, 1:])  # drop the class token: (B, N, K)

    def forward_loss(self, images: torch.Tensor, pred: torch.Tensor,
                     mask: torch.Tensor) -> torch.Tensor:
        """:func:`vlm_course.objectives.generative.mae_loss` against ``patchify(images)``."""
        return mae_loss(pred, self.patchify(images), mask, norm_pix_loss=self.config.norm_pix_loss)

    def forward(self, images: torch.Tensor, mask_ratio: float | None = None, *,
                noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> MAEOutput:
        """All stages: ``images (B, 3, H, W)`` -> :class:`MAEOutput`."""
        latent, mask, ids_restore = self.forward_encoder(images, mask_ratio, noise=noise,
                                                         generator=generator)
        pred = self.forward_decoder(latent, ids_restore)
        return MAEOutput(self.forward_loss(images, pred, mask), pred, mask, ids_restore)

    # ------------------------------------------------------------------ using a trained MAE
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W) -> (B, D)`` features for linear probing: every patch visible, the mean
        of the encoded patch tokens (not normalised)."""
        latent, _, _ = self.forward_encoder(images, 0.0)
        return latent[:, 1:].mean(dim=1)

    def pixels(self, images: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """Predicted patches ``(B, N, K)`` in pixel units: with ``norm_pix_loss`` the prediction
        is un-normalised with each true patch's mean and std (as MAE's visualisations do)."""
        if not self.config.norm_pix_loss:
            return pred
        target = self.patchify(images)
        mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
        return pred * (var + 1e-6) ** 0.5 + mean
