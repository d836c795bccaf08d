"""faceptor-jax: Faceptor (Qin et al., ECCV 2024), a generalist face-perception model, in JAX/Flax."""

import setuptools

setuptools.setup(
    name="faceptor-jax",
    version="0.1.0",
    description="Faceptor: one FaRL ViT-B/16 encoder and one transformer decoder for every face task, "
                "in JAX/Flax NNX, with converters for the official PyTorch checkpoints.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=setuptools.find_packages(include=["faceptor_jax", "faceptor_jax.*",
                                               "data_pipelines", "data_pipelines.*",
                                               "configs"]),
    install_requires=[
        "jax>=0.10.2,<0.13",
        "flax>=0.12.8,<0.13",
        "optax>=0.2.8,<0.3",
        "orbax-checkpoint>=0.12.8,<0.13",
        "grain>=0.2.18,<0.3",
        "tensorflow-datasets>=4.9.10,<5",
        "array-record>=0.8.6,<0.9",
        "ml-collections>=1.1.0,<2",
        "absl-py>=2.1,<3",
        "numpy>=2.0,<3",
        "opencv-python-headless>=4.10,<6",
        "pillow>=10,<14",
        "tqdm>=4.60,<5",
        "scipy>=1.11,<2",
        "h5py>=3.10,<4",
        "hdf5storage>=0.1.19,<0.3",  # writes MATLAB v7.3 files (synthetic COFW)
        "tensorboardX>=2.6,<3",
        "importlib_resources>=6",  # TFDS needs it for builders defined in a package
    ],
    extras_require={
        "test": ["pytest>=8,<10", "pytest-xdist>=3.5,<4", "scikit-learn>=1.4,<2"],
        # Only to read PyTorch `.pth` files (converters, parity tests). Pinned exactly: an
        # unpinned torch pulls a multi-GB CUDA build.
        "torch": ["torch==2.13.0"],
    },
    entry_points={"console_scripts": [
        "faceptor-train=faceptor_jax.main:run",
        "faceptor-predict=faceptor_jax.inference:run",
    ]},
)
