"""Write a small folder of synthetic images for the CPU demo and tests.

    python -m projects.vicreg.demo_data data/demo/unlabeled --num 512

Images are smooth random colour fields with a few shapes, saved as
``{idx}.PNG`` like the competition's unlabeled folder.
"""
import argparse
import os
import os.path as osp

import numpy as np
from PIL import Image, ImageDraw


def make_image(rng: np.random.Generator, size: int) -> Image.Image:
    """A random low-frequency colour field with a few ellipses/rectangles."""
    coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    img = Image.fromarray(coarse).resize((size, size), Image.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 4))):
        x0, y0 = rng.integers(0, size - 4, 2)
        x1, y1 = x0 + rng.integers(4, size), y0 + rng.integers(4, size)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([int(x0), int(y0), int(x1), int(y1)], fill=colour)
    return img


def write_demo_folder(out_dir: str, num: int = 512, size: int = 64,
                      seed: int = 0) -> list:
    """Write ``num`` PNGs named ``{idx}.PNG`` into ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for idx in range(num):
        path = osp.join(out_dir, f'{idx}.PNG')
        make_image(rng, size).save(path)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', nargs='?', default='data/demo/unlabeled')
    parser.add_argument('--num', type=int, default=512)
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    write_demo_folder(args.out_dir, args.num, args.size, args.seed)
    print(f'wrote {args.num} images to {args.out_dir}')


if __name__ == '__main__':
    main()
