"""One orchestration of a try-on, shared by the command line (``fitroom tryon``), the service (a check at upload,
the try-on in a job) and the evaluation:

    observe the photo -> check it -> refuse it, or go on (``force``) -> engine inputs -> engine

:func:`check` observes and checks (the report, the models' findings, the view to use), :func:`admit` refuses a
failing photo unless forced, :func:`analyse` finishes the person's analysis from the check's findings,
:func:`prepare` makes the engine's inputs, :func:`try_on` runs the engine; :func:`check_and_prepare` is the first
four in one call. :func:`target_pose` and :func:`dress_views` turn a person (dressed or not) to other views with a
pose-transfer model, for a try-on seen from the front and the back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fitroom.errors import InputError
from fitroom.labels import GarmentCategory, View
from fitroom.preprocess.errors import MissingBodyPartError, NoPersonError
from fitroom.preprocess.quality import PhotoObservation, PhotoReport, Status, Thresholds, check_photo

if TYPE_CHECKING:
    from fitroom.inputs import TryOnInputs, TryOnResult
    from fitroom.preprocess.pipeline import Detections, PersonAnalysis, Preprocessor


class PhotoRefusedError(InputError):
    """The photo failed a check and ``force`` was not given; ``report`` says which checks and how to fix them."""

    def __init__(self, report: PhotoReport) -> None:
        self.report = report
        failed = [r.message for r in report.results if r.status is Status.FAIL]
        super().__init__("this photo will not give a good try-on: " + " ".join(failed))


@dataclass
class Checked:
    """A person photo after the checks.

    Attributes:
        report: every check's verdict (and the view seen).
        analysis: the full person analysis once :func:`analyse` made it from ``detections`` (:func:`check_and_prepare`
            and :func:`dress_catalogue` keep it here); None before that, and when there is nobody to dress.
        view: the view to try on with: the one asked for, else the one the photo seems to show.
        keypoints_found: whether a person was found at all.
        detections: the models' findings the checks were made from.
    """

    report: PhotoReport
    analysis: PersonAnalysis | None
    view: View
    keypoints_found: bool
    detections: Detections | None = None

    @property
    def failed(self) -> bool:
        return self.report.status is Status.FAIL


def check(preprocessor: Preprocessor, person: np.ndarray, category: GarmentCategory | str,
          view: View | str | None = None, name: str = "", thresholds: Thresholds | None = None,
          glanced: tuple[PhotoObservation, Detections] | None = None) -> Checked:
    """Check ``person`` ``(H, W, 3)`` uint8 for a garment of ``category``, as the ``view`` asked for (None: the
    view the photo seems to show), on :meth:`~fitroom.preprocess.pipeline.Preprocessor.glance`'s quick
    observation (``glanced``: that glance, made already). The full analysis is not made here: :func:`analyse`
    finishes it from the same findings once the photo is admitted (the service leaves it to the try-on job)."""
    observation, detections = glanced or preprocessor.glance(person, None if view is None else View(view), name)
    report = check_photo(observation, category, view, thresholds)
    return Checked(report, None, report.view_used, observation.keypoints is not None, detections)


def admit(checked: Checked, force: bool = False) -> None:
    """Refuse a photo a check failed (:class:`PhotoRefusedError`) unless ``force``; with ``force``, a photo with
    nobody to dress is still refused (a :class:`~fitroom.preprocess.errors.PhotoError`)."""
    if checked.failed and not force:
        raise PhotoRefusedError(checked.report)
    if not checked.keypoints_found:
        raise NoPersonError()
    if checked.analysis is None and (checked.detections is None or not checked.detections.shoulders_found):
        raise MissingBodyPartError("shoulders")


def analyse(preprocessor: Preprocessor, person: np.ndarray, checked: Checked, name: str = "") -> PersonAnalysis:
    """The full analysis of an admitted photo, finished from its check's findings (or the one already kept on
    ``checked``)."""
    if checked.analysis is not None:
        return checked.analysis
    return preprocessor.finish(person, checked.detections, checked.view, name)


def prepare(preprocessor: Preprocessor, analysis: PersonAnalysis, person: np.ndarray, garment: np.ndarray,
            garment_mask: np.ndarray, category: GarmentCategory | str, view: View | str, name: str = "",
            garment_name: str = "") -> TryOnInputs:
    """The engine's inputs from a person analysis and a segmented garment (``garment_mask`` ``(H, W)`` bool)."""
    return preprocessor.inputs(analysis, person, garment, garment_mask, category, view=View(view), name=name,
                               garment_name=garment_name)


@dataclass
class Prepared:
    """:func:`check_and_prepare`'s result: the checks, the garment's category (given or guessed), the view used and
    the engine's inputs."""

    checked: Checked
    category: GarmentCategory
    category_given: bool
    inputs: TryOnInputs

    @property
    def report(self) -> PhotoReport:
        return self.checked.report

    @property
    def view(self) -> View:
        return self.checked.view


def check_and_prepare(preprocessor: Preprocessor, person: np.ndarray, garment: np.ndarray, *,
                      category: GarmentCategory | str | None = None, view: View | str | None = None,
                      force: bool = False, name: str = "", garment_name: str = "",
                      on_checked=None, engine=None) -> Prepared:
    """Segment the garment (its category guessed unless given), check the photo, refuse or go on, and make the
    engine's inputs. ``on_checked(checked, category)`` is called after the checks, before any refusal (the
    command line prints the report there).

    The work is spread over the preprocessor's side threads (:meth:`~fitroom.preprocess.pipeline.Preprocessor.
    beside`): the product photo is segmented while the person's models look at the photo (and an ``engine`` that
    has ``prepare_garment(garment, garment_mask, size)``, the warp engine for tops, makes its garment's part of the
    try-on there too); the checks are made while the full analysis is, which is dropped if the photo is refused
    (or made again for the view the checks chose, when that is not the one the analysis saw). Errors come in the
    order of the steps: the garment's, the refusal, the analysis's."""

    def segment():
        mask, chosen = preprocessor.analyse_garment(garment, category)
        if chosen is GarmentCategory.UPPER and hasattr(engine, "prepare_garment"):
            engine.prepare_garment(garment, mask, person.shape[:2])
        return mask, chosen

    def checking():
        garment_mask, chosen = segmented.result()
        counted = preprocessor.count(detections)
        glanced = preprocessor.glance(person, None if view is None else View(view), name, detections=counted)
        return garment_mask, chosen, check(preprocessor, person, chosen, view, name, glanced=glanced)

    segmented = preprocessor.beside(segment)
    try:
        detections = preprocessor.detect(person, count=False)  # (the people are counted with the checks)
    except BaseException:
        segmented.result()  # (a garment's error first, as when it came first)
        raise
    checks = preprocessor.beside(checking)
    analysis = None
    if detections.shoulders_found:
        try:
            analysis = preprocessor.finish(person, detections, None if view is None else View(view), name)
        except InputError:
            analysis = None  # made again below, after the checks, to raise in its turn
    garment_mask, chosen, checked = checks.result()
    if on_checked is not None:
        on_checked(checked, chosen)
    admit(checked, force)
    if analysis is not None and analysis.view is checked.view:
        analysis.people = checked.detections.people
    else:
        analysis = analyse(preprocessor, person, checked, name)
    checked.analysis = analysis
    inputs = prepare(preprocessor, checked.analysis, person, garment, garment_mask, chosen, checked.view, name,
                     garment_name)
    return Prepared(checked, chosen, category is not None, inputs)


def try_on(engine, inputs: TryOnInputs) -> TryOnResult:
    """Run ``engine`` on ``inputs``; the result's ``timings`` gain the engine's wall time (``"engine"``)."""
    start = time.perf_counter()
    result = engine(inputs)
    result.timings.setdefault("engine", time.perf_counter() - start)
    return result


def target_pose(preprocessor: Preprocessor, analysis: PersonAnalysis, shape: tuple[int, int],
                target: View | str | np.ndarray, name: str = "target") -> np.ndarray:
    """The DensePose render ``(H, W, 3)`` uint8 of the pose a person is turned to, at ``shape`` ``(H, W)``.

    Args:
        analysis: the person photo's analysis (its skeleton and the view it shows).
        target: a view (the person's own skeleton turned to it: front/back mirrored about the body's axis, sides
            narrowed) or a photo ``(H', W', 3)`` of someone in the target pose (its dense map, fitted to ``shape``).
    """
    from fitroom import imaging
    from fitroom.engines.pose_transfer import drawn_dense, turn_keypoints

    if isinstance(target, np.ndarray):
        other = preprocessor.analyse_person(target, view=None, name=name)
        return imaging.resize(other.dense, shape, "labels")
    view = View(target)
    return drawn_dense(turn_keypoints(analysis.keypoints, analysis.view, view), shape, view)


@dataclass
class ViewResult:
    """One view of a multi-view try-on: the picture, how it was made (``"try-on"``, ``"pose transfer"`` or
    ``"pose transfer + try-on"``) and seconds per stage."""

    view: View
    image: np.ndarray
    how: str
    timings: dict[str, float]


def dress_views(engine, pose_model, preprocessor: Preprocessor, prepared: Prepared, views: list[View],
                garments: dict[View, np.ndarray]) -> list[ViewResult]:
    """Dress the person of ``prepared`` (a checked photo and the garment of its view) and show them from each of
    ``views``, in that order: the photo's own view is the try-on; every other view is the dressed person turned by
    ``pose_model`` (:class:`~fitroom.engines.pose_transfer.PoseTransfer`), then, when ``garments`` holds a product
    photo of that view's side (the garment's back for a back view), tried on again with it, so the garment's own
    back is drawn (the turned picture is not checked again: the shopper's photo was).

    Raises:
        InputError: a turned picture in which no person can be found for the second try-on (named by view).
    """
    inputs = prepared.inputs
    first = try_on(engine, inputs)
    results = [ViewResult(prepared.view, first.image, "try-on", first.timings)] if prepared.view in views else []
    analysis = prepared.checked.analysis
    for view in views:
        if view is prepared.view:
            continue
        dense = target_pose(preprocessor, analysis, first.image.shape[:2], view)
        turned = pose_model(first.image, analysis.mask, dense)
        garment = garments.get(view.surface)
        if garment is None:
            results.append(ViewResult(view, turned.image, "pose transfer", turned.timings))
            continue
        try:
            again = check_and_prepare(preprocessor, turned.image, garment, category=prepared.category, view=view,
                                      force=True, name=f"{inputs.name} ({view.value})", engine=engine)
        except InputError as error:
            raise InputError(f"the {view.value} view drawn by pose transfer cannot be dressed again: {error}") from None
        dressed = try_on(engine, again.inputs)
        results.append(ViewResult(view, dressed.image, "pose transfer + try-on",
                                  {**turned.timings, **{f"tryon_{k}": v for k, v in dressed.timings.items()}}))
    return sorted(results, key=lambda result: views.index(result.view))


@dataclass
class CatalogueItem:
    """One garment of :func:`dress_catalogue`: its name, category, and the try-on or why there is none."""

    garment: str
    category: GarmentCategory | None = None
    result: "TryOnResult | None" = None
    error: str | None = None


def dress_catalogue(engine, preprocessor: Preprocessor, person: np.ndarray, garments: list, *,
                    category: GarmentCategory | str | None = None, view: View | str | None = None,
                    force: bool = False, name: str = "", batch_size: int = 1, on_checked=None,
                    progress: bool = False):
    """Dress one person in many garments: the photo is analysed and checked once per garment category (once in all
    for a catalogue of one category), each garment is segmented once, and the engine runs on ``batch_size``
    garments at a time where it can (an engine with a ``batch(list_of_inputs)`` method, such as hrviton; others one
    by one). Batches pay on a GPU; on a 2-core CPU hrviton at 512x384 made 8 garments in 34 s in one batch of 8 and
    in 25 s one by one.

    Args:
        garments: ``(name, photo)`` pairs, the photo an ``(H, W, 3)`` uint8 array or a path (read here: a file that
            cannot be read is that garment's error, not the catalogue's).
        category: every garment's category; None: each one's guessed from its shape.
        on_checked: ``on_checked(checked, category)`` after each category's check, before any refusal.

    Yields:
        :class:`CatalogueItem` per garment, in order. A garment fails alone (unreadable photo, a category the photo
        is refused for, an engine that cannot take it); the person photo showing nobody raises, as in
        :func:`admit`.
    """
    from tqdm import tqdm

    from fitroom import imaging

    if batch_size < 1:
        raise InputError(f"the batch size must be at least 1, got {batch_size}")
    run_batch = getattr(engine, "batch", None)
    checks: dict[GarmentCategory, Checked | PhotoRefusedError] = {}
    pending: list[tuple[CatalogueItem, TryOnInputs | None]] = []  # None: the garment failed already

    def flush():
        everything = list(pending)
        pending.clear()
        items = [item for item, inputs in everything if inputs is not None]
        many = [inputs for _, inputs in everything if inputs is not None]
        if not many:
            return [item for item, _ in everything]
        try:
            results = run_batch(many) if run_batch is not None and len(many) > 1 else [engine(i) for i in many]
        except InputError as error:  # one garment the engine cannot take: retry one by one
            if len(many) == 1:
                items[0].error = str(error)
                return items
            results = []
            for item, inputs in zip(items, many):
                try:
                    results.append(engine(inputs))
                except InputError as each:
                    item.error = str(each)
                    results.append(None)
        for item, result in zip(items, results):
            item.result = result
        return [item for item, _ in everything]

    bar = tqdm(total=len(garments), desc="catalogue", unit="garment", disable=not progress)
    try:
        for garment_name, source in garments:
            item = CatalogueItem(garment_name)
            try:
                photo = imaging.load_image(source) if not isinstance(source, np.ndarray) else source
                mask, chosen = preprocessor.analyse_garment(photo, category)
                item.category = chosen
                if chosen not in checks:
                    checked = check(preprocessor, person, chosen, view, name)
                    if on_checked is not None:
                        on_checked(checked, chosen)
                    try:
                        admit(checked, force)
                        checked.analysis = analyse(preprocessor, person, checked, name)
                        checks[chosen] = checked
                    except PhotoRefusedError as refused:
                        checks[chosen] = refused
                outcome = checks[chosen]
                if isinstance(outcome, PhotoRefusedError):
                    raise outcome
                inputs = prepare(preprocessor, outcome.analysis, person, photo, mask, chosen, outcome.view, name,
                                 garment_name)
            except PhotoRefusedError as refused:
                item.error = f"for {item.category.value} garments, {refused}"
                inputs = None
            except (NoPersonError, MissingBodyPartError):
                raise
            except InputError as error:
                item.error = str(error)
                inputs = None
            pending.append((item, inputs))
            if sum(inputs is not None for _, inputs in pending) >= batch_size:
                done = flush()
                bar.update(len(done))
                yield from done
        done = flush()
        bar.update(len(done))
        yield from done
    finally:
        bar.close()
