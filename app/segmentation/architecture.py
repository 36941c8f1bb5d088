"""The networks: a SAM (segment-anything's own classes) and the AutoLabel box detector.

Both are described by plain JSON-able configs stored in the model card, so a checkpoint never needs
pickled Python objects to be rebuilt. ``SamConfig.vit_b()`` is the published SAM ViT-B layout (a site's
SAM or MedSAM checkpoint); ``SamConfig.tiny()`` is the small default trained here: 256-pixel input with
4-pixel patches, so SAM's 4x mask upscaling returns masks at the full input resolution, which thin
cartilage needs.
"""

from __future__ import annotations

from functools import partial

import torch
from pydantic import BaseModel, ConfigDict, Field
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from torch import nn

from app.segmentation.classes import PromptClass


class SamConfig(BaseModel):
    """Hyper-parameters of a SAM image encoder, prompt encoder and mask decoder."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image_size: int = Field(ge=64, le=2048)
    patch_size: int = Field(ge=2, le=32)
    encoder_embed_dim: int = Field(ge=16)
    encoder_depth: int = Field(ge=1)
    encoder_num_heads: int = Field(ge=1)
    encoder_global_attn_indexes: tuple[int, ...] = ()
    window_size: int = Field(ge=0)
    prompt_embed_dim: int = Field(ge=16)
    decoder_depth: int = Field(default=2, ge=1)
    decoder_mlp_dim: int = Field(default=2048, ge=16)
    decoder_num_heads: int = Field(default=8, ge=1)

    @property
    def embedding_size(self) -> int:
        """Side of the image embedding grid."""
        return self.image_size // self.patch_size

    @property
    def mask_size(self) -> int:
        """Side of the low-resolution mask SAM's decoder returns (4x the embedding grid)."""
        return 4 * self.embedding_size

    @classmethod
    def vit_b(cls) -> SamConfig:
        """SAM ViT-B as published (also MedSAM's layout)."""
        return cls(
            image_size=1024,
            patch_size=16,
            encoder_embed_dim=768,
            encoder_depth=12,
            encoder_num_heads=12,
            encoder_global_attn_indexes=(2, 5, 8, 11),
            window_size=14,
            prompt_embed_dim=256,
        )

    @classmethod
    def tiny(cls) -> SamConfig:
        """The offline default: ~0.8 M parameters, full-resolution 256x256 masks.

        Every encoder block attends within 8x8-token windows (32x32 pixels): global attention over 4096
        tokens costs seconds per slice on a CPU. Whole-slice context comes from the mask decoder, whose
        box tokens attend to every image token.
        """
        return cls(
            image_size=256,
            patch_size=4,
            encoder_embed_dim=64,
            encoder_depth=4,
            encoder_num_heads=4,
            window_size=8,
            prompt_embed_dim=64,
            decoder_depth=2,
            decoder_mlp_dim=256,
            decoder_num_heads=4,
        )


def build_sam(config: SamConfig) -> Sam:
    """A randomly initialised SAM with this layout (load a state dict into it)."""
    grid = config.embedding_size
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=config.encoder_depth,
            embed_dim=config.encoder_embed_dim,
            img_size=config.image_size,
            mlp_ratio=4,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            num_heads=config.encoder_num_heads,
            patch_size=config.patch_size,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=config.encoder_global_attn_indexes,
            window_size=config.window_size,
            out_chans=config.prompt_embed_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=config.prompt_embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(config.image_size, config.image_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=config.decoder_depth,
                embedding_dim=config.prompt_embed_dim,
                mlp_dim=config.decoder_mlp_dim,
                num_heads=config.decoder_num_heads,
            ),
            transformer_dim=config.prompt_embed_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
    )


class BoxDecoder(nn.Module):
    """Box prompts for one slice's embedding -> one low-resolution mask logit map and IoU guess per box.

    SAM's prompt encoder and mask decoder without ``Sam.postprocess_masks``: the caller crops the padding
    and resizes to the slice's own shape, so the exported graph has no aspect ratio baked in.
    """

    def __init__(self, sam: Sam) -> None:
        super().__init__()
        self.prompt_encoder = sam.prompt_encoder
        self.mask_decoder = sam.mask_decoder

    def forward(self, image_embedding: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``image_embedding`` (1, C, h, w); ``boxes`` (N, 4) x0, y0, x1, y1 in model-input pixels."""
        sparse, dense = self.prompt_encoder(points=None, boxes=boxes, masks=None)
        masks, iou = self.mask_decoder(
            image_embeddings=image_embedding,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
        return masks, iou

    def forward_pairs(self, image_embeddings: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Box ``i`` decoded against embedding ``i``: (N, C, h, w) and (N, 4) -> (N, 1, m, m) mask logits.

        SAM's decoder repeats one image's embedding for every box, so boxes of different slices need one
        call per slice; training batches boxes across slices, and this is the same computation
        (:meth:`forward`'s first, single-mask output) with that repetition left out.
        """
        decoder = self.mask_decoder
        sparse, dense = self.prompt_encoder(points=None, boxes=boxes, masks=None)
        output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
        tokens = torch.cat((output_tokens.unsqueeze(0).expand(sparse.shape[0], -1, -1), sparse), dim=1)
        src = image_embeddings + dense
        position = self.prompt_encoder.get_dense_pe().expand(src.shape[0], -1, -1, -1)
        b, c, h, w = src.shape
        hidden, src = decoder.transformer(src, position, tokens)
        upscaled = decoder.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
        hyper = decoder.output_hypernetworks_mlps[0](hidden[:, 1, :])[:, None, :]
        return (hyper @ upscaled.flatten(2)).view(b, 1, *upscaled.shape[-2:])


def _block(channels_in: int, channels_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(channels_out),
        nn.ReLU(inplace=True),
    )


class AutoLabelDetector(nn.Module):
    """A small fully convolutional detector: one objectness map per prompt class at 1/4 resolution.

    Like YOLO's objectness, each output cell says whether a tissue is there; the box of a class on a
    slice is the extent of its cells (:func:`app.segmentation.prompts.boxes_from_objectness`). A dense map
    rather than box regression keeps the network tiny and its output easy to check.
    Input: (B, 1, S, S) normalised slices; output: (B, classes, S/4, S/4) logits.
    """

    def __init__(self, classes: int = len(PromptClass), width: int = 24) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(_block(1, w, 2), _block(w, w, 2))  # 1/4
        self.down1 = nn.Sequential(_block(w, 2 * w, 2), _block(2 * w, 2 * w))  # 1/8
        self.down2 = nn.Sequential(_block(2 * w, 4 * w, 2), _block(4 * w, 4 * w))  # 1/16
        self.down3 = nn.Sequential(_block(4 * w, 4 * w, 2), _block(4 * w, 4 * w))  # 1/32: whole-knee context
        self.up3 = _block(8 * w, 4 * w)
        self.up2 = _block(6 * w, 2 * w)
        self.up1 = _block(3 * w, w)
        self.head = nn.Conv2d(w, classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        s4 = self.stem(image)
        s8 = self.down1(s4)
        s16 = self.down2(s8)
        s32 = self.down3(s16)
        x = self.up3(torch.cat([nn.functional.interpolate(s32, size=s16.shape[-2:]), s16], 1))
        x = self.up2(torch.cat([nn.functional.interpolate(x, size=s8.shape[-2:]), s8], 1))
        x = self.up1(torch.cat([nn.functional.interpolate(x, size=s4.shape[-2:]), s4], 1))
        return self.head(x)
