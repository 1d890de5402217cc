"""Training with the paper's recipe learns: a tiny detector told real faces from their self-blended fakes."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from clipforensics.models.backbones import TINY_BACKBONE
from clipforensics.hub.checkpoints import load_model
from clipforensics.data.dataset import FrameDataset, PairedBatchSampler
from clipforensics.data.manifest import FAKE, REAL, load_manifest
from clipforensics.metrics import auroc
from clipforensics.models.factory import create_model
from clipforensics.models.model import ModelConfig
from clipforensics.training import TrainConfig, fit, load_config
from clipforensics.models.tuning import apply_tuning


def _scores(model, dataset: FrameDataset) -> tuple[np.ndarray, np.ndarray]:
    torch.manual_seed(123)  # the same pseudo-fakes before and after training
    items = [dataset[i] for i in range(len(dataset))]
    with torch.no_grad():
        logits = model(torch.stack([item["image"] for item in items])).logits
    return np.array([item["label"] for item in items]), logits.softmax(1)[:, 1].numpy()


def test_a_few_dozen_steps_lower_the_loss_and_raise_the_auroc(real_faces, tmp_path):
    torch.manual_seed(0)
    model = create_model(ModelConfig(TINY_BACKBONE))
    apply_tuning(model, "full")
    probe = FrameDataset(load_manifest(real_faces), model.config.preprocessing, self_blend=True)
    labels, before = _scores(model.eval(), probe)
    config = load_config(None, [
        f"data.train=[{real_faces}]", "data.fakes=sbi", "data.augment=false", "data.num_workers=0",
        "loss.slerp=false", "loss.uniformity=0.5", "loss.alignment=0.1",
        "optim.lr=1e-3", "optim.min_lr=1e-4", "optim.batch_size=16",
        "trainer.epochs=10", "trainer.precision=32-true", "trainer.accelerator=cpu", "trainer.devices=1",
        f"trainer.output_dir={tmp_path / 'run'}",
    ])

    out = fit(config, model=model)

    with (out / "logs" / "version_0" / "metrics.csv").open() as file:
        losses = [float(row["train/loss"]) for row in csv.DictReader(file) if row.get("train/loss")]
    assert len(losses) >= 30
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    trained, _ = load_model(out / "last")
    _, after = _scores(trained, probe)
    assert auroc(labels, after) > auroc(labels, before) + 0.1
    assert (out / "config.yaml").is_file()


def test_the_presets_load_and_carry_the_papers_numbers():
    root = Path(__file__).resolve().parents[1] / "configs"
    seed = load_config(root / "lnclip-l14-ffpp.yaml")
    gend = load_config(root / "gend-clip-l14-ffpp.yaml")

    assert (seed.optim.lr, seed.optim.min_lr, seed.optim.batch_size, seed.trainer.epochs) == (8e-5, 5e-5, 128, 10)
    assert seed.model.tuning == "layernorm" and seed.model.head == "LinearNorm" and seed.loss.slerp
    assert (gend.loss.cross_entropy, gend.loss.uniformity, gend.loss.alignment) == (1.0, 0.5, 0.1)
    assert (gend.optim.lr, gend.optim.min_lr, gend.optim.scheduler, gend.optim.restart_epochs) == (
        3e-4, 1e-6, "cosine-restarts", 10)
    assert gend.trainer.epochs == 30


def test_unknown_config_fields_are_named():
    with pytest.raises(ValueError, match="optim.learning_rate"):
        TrainConfig.from_dict({"optim": {"learning_rate": 1.0}})


def _paired_dataset(root: Path) -> FrameDataset:
    from PIL import Image

    for video in ("FF/real/000", "FF/real/001", "FF/DF/000_001", "FF/DF/001_000"):
        for frame in range(3):
            (root / video).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8)).save(root / video / f"{frame}.png")
    return FrameDataset(load_manifest(root), ModelConfig(TINY_BACKBONE).preprocessing)


def test_paired_batches_put_each_fake_beside_a_real_of_its_source_video(tmp_path):
    dataset = _paired_dataset(tmp_path)

    batches = list(PairedBatchSampler(dataset, batch_size=4, seed=1))

    samples = dataset.samples
    assert sorted(i for b in batches for i in b[0::2]) == [i for i, s in enumerate(samples) if s.label == FAKE]
    for batch in batches:
        for fake, real in zip(batch[0::2], batch[1::2]):
            assert samples[real].label == REAL
            assert samples[real].video.split("/")[-1] == samples[fake].video.split("/")[-1].split("_")[0]


def test_paired_batches_are_shared_out_across_ranks_equally_and_reshuffled_per_epoch(tmp_path):
    dataset = _paired_dataset(tmp_path)
    whole = PairedBatchSampler(dataset, batch_size=4, seed=1)
    ranks = [PairedBatchSampler(dataset, batch_size=4, seed=1, replicas=2, rank=rank) for rank in (0, 1)]

    shares = [list(sampler) for sampler in ranks]

    batches = list(whole)
    assert len(batches) == 3
    assert shares == [[batches[0], batches[2]], [batches[1], batches[0]]], "every 2nd batch, the short rank wraps"
    for sampler in (whole, *ranks):
        sampler.set_epoch(1)
    reshuffled = list(whole)
    assert reshuffled != batches
    assert [list(sampler) for sampler in ranks] == [[reshuffled[0], reshuffled[2]], [reshuffled[1], reshuffled[0]]]


@pytest.mark.parametrize(
    ("mode", "changes"),
    [
        ("layernorm", lambda key: key.startswith("head.") or any(
            part in key for part in ("pre_layrnorm", "layer_norm1", "layer_norm2", "post_layernorm"))),
        ("linear-probe", lambda key: key.startswith("head.")),
        ("lora", lambda key: key.startswith("head.") or any(
            key.endswith(f"{proj}.weight") for proj in ("q_proj", "k_proj", "v_proj", "out_proj"))),
        ("full", lambda key: True),
    ],
)
def test_only_the_parameters_of_the_tuning_mode_change(real_faces, tmp_path, mode, changes):
    torch.manual_seed(0)
    model = create_model(ModelConfig(TINY_BACKBONE))
    before = {key: value.clone() for key, value in model.state_dict().items()}
    apply_tuning(model, mode)
    config = load_config(None, [
        f"data.train=[{real_faces}]", "data.fakes=sbi", "data.augment=false", "data.num_workers=0",
        "optim.lr=1e-2", "optim.batch_size=8", "trainer.epochs=1", "trainer.limit_train_batches=2",
        "trainer.precision=32-true", "trainer.accelerator=cpu", "trainer.devices=1",
        f"trainer.output_dir={tmp_path / mode}",
    ])

    trained, _ = load_model(fit(config, model=model) / "last")

    after = trained.state_dict()
    changed = {key for key in before if not torch.equal(before[key], after[key])}
    assert changed == {key for key in before if changes(key) and before[key].is_floating_point()}


def _mean_iou(model, dataset: FrameDataset) -> float:
    from clipforensics.metrics import pixel_scores

    items = [dataset[i] for i in range(len(dataset))]
    with torch.no_grad():
        maps = torch.sigmoid(model(torch.stack([item["image"] for item in items])).maps)[:, 0].numpy()
    return float(np.mean([pixel_scores(m, item["mask"][0].numpy() > 0.5)["iou"] for m, item in zip(maps, items)]))


@pytest.fixture(scope="module")
def blended_faces(real_faces, tmp_path_factory) -> Path:
    """Self-blended fakes of the sample faces with their masks beside them (``<frame>_mask.png``: where
    the blend weight passes 0.1, a binary truth; the soft blend itself is often below 0.5 everywhere)."""
    from PIL import Image

    from clipforensics.data.sbi import self_blend

    root = tmp_path_factory.mktemp("blended") / "S"
    rng = np.random.default_rng(0)
    for sample in load_manifest(real_faces):
        frame = Path(sample.path)
        target = root / "SBI" / frame.parent.name / frame.name
        target.parent.mkdir(parents=True, exist_ok=True)
        landmarks = np.load(frame.with_name(f"{frame.stem}_lm68.npy"))
        fake, blend = self_blend(np.asarray(Image.open(frame).convert("RGB")), landmarks, rng)
        Image.fromarray(fake).save(target)
        Image.fromarray(((blend > 0.1) * 255).astype(np.uint8)).save(target.with_name(f"{target.stem}_mask.png"))
    return root


def test_a_tiny_localizer_trained_on_self_blended_fakes_ends_with_a_higher_iou(blended_faces, tmp_path):

    torch.manual_seed(0)
    model = create_model(ModelConfig(TINY_BACKBONE, head=None, decoder="linear", layer=1))
    apply_tuning(model, "linear-probe")
    probe = FrameDataset(load_manifest(blended_faces), model.config.preprocessing, mask_size=224)
    before = _mean_iou(model.eval(), probe)
    config = load_config(None, [
        "model.head=null", "model.decoder=linear", f"data.train=[{blended_faces}]", f"data.val=[{blended_faces}]",
        "data.augment=false", "data.num_workers=0", "optim.lr=1e-2", "optim.scheduler=plateau",
        "optim.batch_size=8", "trainer.epochs=8", "trainer.precision=32-true", "trainer.accelerator=cpu",
        "trainer.devices=1", f"trainer.output_dir={tmp_path / 'run'}",
    ])

    out = fit(config, model=model)

    trained, provenance = load_model(out / "best")
    after = _mean_iou(trained.eval(), probe)
    assert trained.config.kind == "localizer" and "val_iou" in provenance
    assert after > before + 0.1, (before, after)
    with (out / "logs" / "version_0" / "metrics.csv").open() as file:
        assert any(row.get("val/iou") for row in csv.DictReader(file))


def test_the_declip_preset_loads_with_the_papers_numbers():
    declip = load_config(Path(__file__).resolve().parents[1] / "configs" / "declip-l14-conv20.yaml")

    assert (declip.model.head, declip.model.decoder, declip.model.layer, declip.model.tuning) == (
        None, "conv-20", 20, "linear-probe")
    assert (declip.optim.lr, declip.optim.scheduler, declip.optim.patience, declip.optim.min_lr) == (
        1e-3, "plateau", 5, 1e-6)


def test_the_joint_model_trains_on_both_losses_with_masks_and_on_detection_alone_without(blended_faces, real_faces,
                                                                                         tmp_path):
    config = load_config(None, [
        "model.backbone={width: 64, layers: 2, mlp_width: 256, patch_size: 16, image_size: 224}",
        "model.weights=null", "model.decoder=linear", "model.layer=1", "model.tuning=layernorm",
        f"data.train=[{blended_faces}, {real_faces}]", f"data.val=[{blended_faces}, {real_faces}]",
        "data.augment=false", "data.num_workers=0", "loss.slerp=false", "optim.batch_size=16", "trainer.epochs=1",
        "trainer.precision=32-true", "trainer.accelerator=cpu", "trainer.devices=1",
        f"trainer.output_dir={tmp_path / 'run'}",
    ])

    out = fit(config)

    with (out / "logs" / "version_0" / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert any(row.get("train/ce") for row in rows) and any(row.get("train/mask") for row in rows)
    assert any(row.get("val/video_mAP") for row in rows) and any(row.get("val/iou") for row in rows)
    trained, _ = load_model(out / "best")
    assert trained.config.kind == "joint"


def test_self_blended_training_validates_on_the_validation_sets_own_real_and_fake_videos(real_faces, sample_faces,
                                                                                        tmp_path):
    config = load_config(None, [
        "model.backbone={width: 64, layers: 2, mlp_width: 256, patch_size: 16, image_size: 224}",
        "model.weights=null", f"data.train=[{real_faces}]", f"data.val=[{sample_faces}]", "data.fakes=sbi",
        "data.augment=false", "data.num_workers=0", "optim.batch_size=8", "trainer.epochs=2",
        "trainer.precision=32-true", "trainer.accelerator=cpu", "trainer.devices=1",
        f"trainer.output_dir={tmp_path / 'run'}",
    ])

    out = fit(config)

    with (out / "logs" / "version_0" / "metrics.csv").open() as file:
        rows = [row for row in csv.DictReader(file) if row.get("val/video_auroc")]
    assert len(rows) == 2
    assert (out / "best" / "model.safetensors").is_file()


def test_validation_scores_the_videos_of_the_manifest_even_when_their_frames_share_one_folder(flat_manifest,
                                                                                              tmp_path):
    with flat_manifest.open() as file:
        written = list(csv.DictReader(file))
    videos = [f"{row['dataset']}/{row['source']}/{row['video']}" for row in written]
    config = load_config(None, [
        "model.backbone={width: 64, layers: 2, mlp_width: 256, patch_size: 16, image_size: 224}",
        "model.weights=null", f"data.train=[{flat_manifest}]", f"data.val=[{flat_manifest}]", "data.augment=false",
        "data.num_workers=0", "optim.batch_size=8", "trainer.epochs=1", "trainer.precision=32-true",
        "trainer.accelerator=cpu", "trainer.devices=1", f"trainer.output_dir={tmp_path / 'run'}",
    ])

    out = fit(config)

    with (out / "logs" / "version_0" / "metrics.csv").open() as file:
        logged = [row for row in csv.DictReader(file) if row.get("val/video_auroc")]
    trained, _ = load_model(out / "last")
    dataset = FrameDataset(load_manifest(flat_manifest), trained.config.preprocessing)
    with torch.no_grad():
        p_fake = trained.eval().p_fake(trained(torch.stack([dataset[i]["image"] for i in range(len(dataset))])))
    by_video: dict[str, list[float]] = {}
    for video, score in zip(videos, p_fake.tolist(), strict=True):
        by_video.setdefault(video, []).append(score)
    video_labels = [int("real" not in video.split("/")[1].lower()) for video in by_video]
    assert len(logged) == 1 and len(by_video) == 8
    assert float(logged[0]["val/video_auroc"]) == pytest.approx(
        auroc(np.array(video_labels), np.array([np.mean(scores) for scores in by_video.values()])), abs=1e-6)


def test_a_validation_video_whose_frames_disagree_on_the_label_is_refused_before_training(real_faces, tmp_path):
    from PIL import Image

    from clipforensics.errors import UsageError

    for name in ("a.png", "b.png"):
        Image.new("RGB", (64, 64), "grey").save(tmp_path / name)
    manifest = tmp_path / "val.csv"
    manifest.write_text("path,label,dataset,source,video\na.png,real,D,mixed,v1\nb.png,fake,D,mixed,v1\n")
    config = load_config(None, [f"data.train=[{real_faces}]", f"data.val=[{manifest}]", "data.fakes=sbi",
                                "trainer.accelerator=cpu", f"trainer.output_dir={tmp_path / 'run'}"])

    with pytest.raises(UsageError, match=r"video 'D/mixed/v1' has frames with different labels .*\(in data.val"):
        fit(config)

    assert not (tmp_path / "run").exists()
