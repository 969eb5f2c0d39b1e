"""What a fit is: the model configuration, the inference method and its settings.

`ModelConfig` describes the network (architecture, priors, noise model and link, seed);
each inference method reads only its own settings dataclass. `BNNConfig` bundles them,
selected by `method`, and keeps the flat key space the CLI, the benchmarks and the stored
manifest's `config` section use (`with_overrides`, `to_dict`): one key per field, a key
that two methods share (`draws`, `ensemble_members`) set for both.

The defaults were chosen by measurement (docs/calibration.md has the tables): one hidden
layer of 16 tanh units fits every hyperelastic group tried and the motorcycle data; two
layers gained nothing under ADVI. The exp noise link keeps the log-sigma head linear,
which the priors below are written for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, get_args

Method = Literal["bootstrap", "advi", "fullrank_advi", "nuts", "ensemble"]
Noise = Literal["heteroskedastic", "homoskedastic"]
NoiseLink = Literal["exp", "softplus"]

METHODS: tuple[str, ...] = get_args(Method)
NOISE_MODELS: tuple[str, ...] = get_args(Noise)
NOISE_LINKS: tuple[str, ...] = get_args(NoiseLink)
# Methods whose draws are MAP fits (one per member) rather than posterior samples.
MAP_ENSEMBLES = ("bootstrap", "ensemble")
# Held-out fits that score a version: K folds by material (training.folds). Five give
# every material a held-out score from a fit on 80% of the others, at the cost of six
# fits in all (docs/calibration.md, "Held-out figures and their spread").
DEFAULT_FOLDS = 5


@dataclass(frozen=True)
class ModelConfig:
    hidden_sizes: tuple[int, ...] = (16,)
    noise: Noise = "heteroskedastic"
    noise_link: NoiseLink = "exp"
    input_weight_prior_sd: float = 4.0
    # Wide enough that hidden units can switch anywhere across the standardised domain
    # and beyond it; wider priors traded the Mooney-Rivlin scatter for mcycle's NLPD
    # (docs/calibration.md, "Bias prior SD 3").
    bias_prior_sd: float = 3.0
    # Prior centre of log sigma in normalised units: noise a third of the data's SD.
    log_sigma_prior_mean: float = -1.0
    seed: int = 0


@dataclass(frozen=True)
class MapSettings:
    """The L-BFGS MAP fits every method uses (members, or the start of ADVI and NUTS)."""

    map_max_iterations: int = 3000
    # L-BFGS stops when one iteration improves the log posterior by less than this
    # fraction of it (scipy's ftol): scipy's default runs every member into the iteration
    # cap for almost no gain, a looser one stops short; this one scores as the cap did in
    # half the time (docs/calibration.md, "MAP tolerance").
    map_tolerance: float = 1e-7


@dataclass(frozen=True)
class BootstrapSettings:
    # Members = stored draws. Fewer were cheaper but noisier from seed to seed
    # (docs/calibration.md, 8 members against 16).
    ensemble_members: int = 16


@dataclass(frozen=True)
class EnsembleSettings:
    """The plain deep ensemble of MAP members (members = stored draws)."""

    ensemble_members: int = 16


@dataclass(frozen=True)
class AdviSettings:
    """Mean-field and full-rank ADVI."""

    # At most this many steps in all; the fit stops earlier when the loss plateaus.
    max_steps: int = 30_000
    learning_rate: float = 0.01
    # Learning rates after the first plateau, each run to its own plateau.
    learning_rate_decay: tuple[float, ...] = (0.1,)
    # Plateau test: compare the mean loss of consecutive windows of this many steps.
    convergence_window: int = 500
    convergence_tolerance: float = 1e-3
    # Starting SD of every variational factor (small: start at the MAP point).
    initial_posterior_sd: float = 0.01
    draws: int = 1000


@dataclass(frozen=True)
class NutsSettings:
    """NUTS through nutpie."""

    draws: int = 1000
    tune: int = 500
    chains: int = 2
    target_accept: float = 0.9


# Settings section -> the methods that read it (in METHODS order, for messages).
_SECTION_METHODS: dict[str, tuple[str, ...]] = {
    "bootstrap": ("bootstrap",), "advi": ("advi", "fullrank_advi"), "nuts": ("nuts",),
    "ensemble": ("ensemble",),
}
_SECTION_TYPES: dict[str, type] = {
    "bootstrap": BootstrapSettings, "advi": AdviSettings, "nuts": NutsSettings,
    "ensemble": EnsembleSettings,
}
_CHOICES: dict[str, tuple[str, ...]] = {"noise": NOISE_MODELS, "method": METHODS,
                                        "noise_link": NOISE_LINKS}


def _names(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


def methods_using(key: str) -> tuple[str, ...]:
    """The methods a flat config key matters to (all of them for model and MAP keys)."""
    if key in _names(ModelConfig) or key in _names(MapSettings) or key in ("method", "extra"):
        return METHODS
    owners = {m for section, cls in _SECTION_TYPES.items() if key in _names(cls)
              for m in _SECTION_METHODS[section]}
    if not owners:
        raise ValueError(f"unknown BNN config keys: [{key!r}]")
    return tuple(m for m in METHODS if m in owners)


@dataclass(frozen=True)
class BNNConfig:
    """Defaults for a fit; `with_overrides` merges user choices over them."""

    model: ModelConfig = field(default_factory=ModelConfig)
    # The Bayesian-bootstrap ensemble: the only fast method that met every target of the
    # calibration benchmark (training.model's docstring; docs/calibration.md).
    method: Method = "bootstrap"
    map: MapSettings = field(default_factory=MapSettings)
    bootstrap: BootstrapSettings = field(default_factory=BootstrapSettings)
    ensemble: EnsembleSettings = field(default_factory=EnsembleSettings)
    advi: AdviSettings = field(default_factory=AdviSettings)
    nuts: NutsSettings = field(default_factory=NutsSettings)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> BootstrapSettings | EnsembleSettings | AdviSettings | NutsSettings:
        """The settings the chosen method reads."""
        section = next(s for s, methods in _SECTION_METHODS.items() if self.method in methods)
        return getattr(self, section)  # type: ignore[no-any-return]

    def with_overrides(self, **overrides: Any) -> BNNConfig:
        """Flat keys (as in `to_dict`) over this config; None leaves a key as it is."""
        known = set(self.to_dict())
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown BNN config keys: {sorted(unknown)}")
        given = {k: v for k, v in overrides.items() if v is not None}
        for key in ("noise", "method", "noise_link"):
            value = given.get(key)
            if key in given and value not in _CHOICES[key]:
                if key == "noise_link":
                    raise ValueError(f"noise_link must be exp or softplus, got {value!r}")
                raise ValueError(f"{key} must be one of {_CHOICES[key]}, got {value!r}")
        top = {k: given[k] for k in ("method", "extra") if k in given}
        sections = {"model": ModelConfig, "map": MapSettings, **_SECTION_TYPES}
        for section, cls in sections.items():
            mine = {k: v for k, v in given.items() if k in _names(cls)}
            if mine:
                top[section] = replace(getattr(self, section), **mine)
        return replace(self, **top)

    @property
    def stored_draws(self) -> int:
        """Draws in the artifact: members for an ensemble, else `draws`."""
        settings = self.settings
        if isinstance(settings, BootstrapSettings | EnsembleSettings):
            return settings.ensemble_members
        return settings.draws

    def to_dict(self) -> dict[str, Any]:
        """One flat dict, the keys the stored manifests have always had; a key two methods
        share takes the chosen method's value."""
        data: dict[str, Any] = {}
        for section in ("model", "map", *_SECTION_TYPES):
            for key, value in asdict(getattr(self, section)).items():
                data.setdefault(key, value)
        data.update(asdict(self.settings))
        data["method"] = self.method
        data["extra"] = dict(self.extra)
        data["hidden_sizes"] = list(self.model.hidden_sizes)
        data["learning_rate_decay"] = list(self.advi.learning_rate_decay)
        return data


# The config key behind each method-specific option of `surrogate-train fit`.
_OPTION_KEYS = {
    "--steps": "max_steps", "--draws": "draws", "--tune": "tune", "--chains": "chains",
    "--target-accept": "target_accept", "--members": "ensemble_members",
}


def check_method_options(method: str, given: dict[str, object]) -> None:
    """Refuse an option the chosen method would silently ignore (e.g. --draws with the
    default bootstrap, which stores one draw per member)."""
    for option, value in given.items():
        applies = methods_using(_OPTION_KEYS[option])
        if value is not None and method not in applies:
            raise ValueError(f"{option} does not apply to --method {method}; it applies to "
                             f"{', '.join(applies)}")


def config_from_fit_options(*, noise: str, hidden: str, method: str | None,
                            steps: int | None, draws: int | None, tune: int | None,
                            chains: int | None, target_accept: float | None,
                            members: int | None, seed: int) -> BNNConfig:
    """The config that `surrogate-train fit`'s options (and a fit-many plan entry's, which
    are the same options) describe; ValueError names a bad or inapplicable option."""
    try:
        hidden_sizes = tuple(int(h) for h in hidden.split(","))
    except ValueError:
        raise ValueError(f"--hidden must be comma-separated integers, got {hidden!r}") from None
    config = BNNConfig().with_overrides(
        noise=noise, hidden_sizes=hidden_sizes, method=method, max_steps=steps, draws=draws,
        tune=tune, chains=chains, target_accept=target_accept, ensemble_members=members,
        seed=seed)
    check_method_options(config.method, {"--steps": steps, "--draws": draws, "--tune": tune,
                                         "--chains": chains, "--target-accept": target_accept,
                                         "--members": members})
    return config
