//! Semi-supervised splits as in Rasmus et al. 2015, "Semi-Supervised
//! Learning with Ladder Networks": a validation hold-out, a small
//! class-balanced labelled subset, and an unlabelled set that, as in the
//! paper, contains every non-validation example including the labelled ones.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::DataError;
use super::dataset::check_label_range;

/// Name used in errors about the labels given to [`semi_supervised_split`].
const LABELS_NAME: &str = "<labels passed to semi_supervised_split>";

/// Indices into a dataset; each list is sorted ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemiSupervisedSplit {
    /// Examples whose labels training may use, balanced across classes.
    pub labeled: Vec<usize>,
    /// Examples used without labels (includes `labeled` unless capped).
    pub unlabeled: Vec<usize>,
    /// Held-out examples, disjoint from both other sets.
    pub validation: Vec<usize>,
}

/// Requested split sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitSpec {
    /// Labelled examples; 0, or at least the number of non-validation
    /// examples, means all non-validation examples (fully supervised).
    pub labeled: usize,
    /// Unlabelled examples; `None` means all non-validation examples.
    pub unlabeled: Option<usize>,
    /// Examples held out for validation.
    pub validation: usize,
}

/// Splits example indices for semi-supervised training, deterministically
/// for a given `seed`.
///
/// 1. Shuffle all indices with `Xoshiro256PlusPlus::seed_from_u64(seed)`.
/// 2. The first `spec.validation` shuffled indices are the validation set.
/// 3. From the rest, in shuffled order, take `labeled / num_classes`
///    examples of each class, plus one more for each of the lowest
///    `labeled % num_classes` classes; errors if a class has too few.
///    With `labeled == 0` or `labeled ==` the number remaining, all remaining
///    examples are labelled (the caller can compare `labeled.len()` with the
///    request to tell).
/// 4. The unlabelled set is all remaining examples, or the first
///    `spec.unlabeled` of a fresh seeded shuffle of them.
pub fn semi_supervised_split(
    labels: &[u32],
    num_classes: usize,
    spec: &SplitSpec,
    seed: u64,
) -> Result<SemiSupervisedSplit, DataError> {
    check_inputs(labels, num_classes, spec)?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.shuffle(&mut rng);
    let (validation, rest) = order.split_at(spec.validation);
    let labeled = balanced_subset(labels, rest, num_classes, spec.labeled)?;
    let unlabeled = unlabeled_subset(rest, spec.unlabeled, &mut rng)?;
    Ok(SemiSupervisedSplit {
        labeled: sorted(labeled),
        unlabeled: sorted(unlabeled),
        validation: sorted(validation.to_vec()),
    })
}

/// Rejects inputs no split can satisfy, before any work is done.
fn check_inputs(labels: &[u32], num_classes: usize, spec: &SplitSpec) -> Result<(), DataError> {
    if num_classes == 0 {
        return Err(DataError::NoClasses);
    }
    check_label_range(labels, num_classes, LABELS_NAME)?;
    if spec.validation >= labels.len() {
        return Err(DataError::ImpossibleSplit {
            what: "validation examples (at least one example must remain for training)",
            requested: spec.validation,
            available: labels.len().saturating_sub(1),
        });
    }
    Ok(())
}

/// Labelled examples wanted per class: an even share, with the remainder
/// going one each to the lowest class indices.
fn class_quotas(labeled: usize, num_classes: usize) -> Vec<usize> {
    (0..num_classes)
        .map(|class| labeled / num_classes + usize::from(class < labeled % num_classes))
        .collect()
}

/// Takes each class's quota from `pool` in its (shuffled) order.
fn balanced_subset(
    labels: &[u32],
    pool: &[usize],
    num_classes: usize,
    labeled: usize,
) -> Result<Vec<usize>, DataError> {
    if labeled == 0 || labeled == pool.len() {
        return Ok(pool.to_vec());
    }
    if labeled > pool.len() {
        return Err(DataError::ImpossibleSplit {
            what: "labelled examples",
            requested: labeled,
            available: pool.len(),
        });
    }
    let mut need = class_quotas(labeled, num_classes);
    check_enough(labels, pool, &need)?;
    let mut chosen = Vec::with_capacity(labeled);
    for &i in pool {
        let class = labels[i] as usize;
        if need[class] > 0 {
            need[class] -= 1;
            chosen.push(i);
        }
    }
    Ok(chosen)
}

/// Errors on the lowest class with fewer examples in `pool` than its quota.
fn check_enough(labels: &[u32], pool: &[usize], quotas: &[usize]) -> Result<(), DataError> {
    let mut have = vec![0usize; quotas.len()];
    for &i in pool {
        have[labels[i] as usize] += 1;
    }
    let short = have
        .iter()
        .zip(quotas)
        .position(|(&have, &need)| have < need);
    match short {
        Some(class) => Err(DataError::NotEnoughExamples {
            class,
            have: have[class],
            need: quotas[class],
        }),
        None => Ok(()),
    }
}

/// All of `pool`, or `count` of it chosen by a fresh shuffle so that the
/// choice does not favour the examples picked as labelled.
fn unlabeled_subset(
    pool: &[usize],
    count: Option<usize>,
    rng: &mut Xoshiro256PlusPlus,
) -> Result<Vec<usize>, DataError> {
    let Some(count) = count else {
        return Ok(pool.to_vec());
    };
    if count > pool.len() {
        return Err(DataError::ImpossibleSplit {
            what: "unlabelled examples (outside validation)",
            requested: count,
            available: pool.len(),
        });
    }
    let mut shuffled = pool.to_vec();
    shuffled.shuffle(rng);
    shuffled.truncate(count);
    Ok(shuffled)
}

fn sorted(mut indices: Vec<usize>) -> Vec<usize> {
    indices.sort_unstable();
    indices
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// `n` labels cycling through 10 classes.
    fn cyclic(n: usize) -> Vec<u32> {
        (0..n).map(|i| (i % 10) as u32).collect()
    }

    fn spec(labeled: usize, unlabeled: Option<usize>, validation: usize) -> SplitSpec {
        SplitSpec {
            labeled,
            unlabeled,
            validation,
        }
    }

    fn counts(labels: &[u32], indices: &[usize]) -> Vec<usize> {
        let mut counts = vec![0; 10];
        for &i in indices {
            counts[labels[i] as usize] += 1;
        }
        counts
    }

    fn is_sorted_unique(v: &[usize]) -> bool {
        v.windows(2).all(|w| w[0] < w[1])
    }

    #[test]
    fn labelled_set_is_balanced_and_sets_have_expected_sizes() {
        let labels = cyclic(1000);
        let split = semi_supervised_split(&labels, 10, &spec(100, None, 200), 7).unwrap();
        assert_eq!(counts(&labels, &split.labeled), vec![10; 10]);
        assert_eq!(split.validation.len(), 200);
        assert_eq!(split.unlabeled.len(), 800);
        for list in [&split.labeled, &split.unlabeled, &split.validation] {
            assert!(is_sorted_unique(list));
        }
    }

    #[test]
    fn validation_is_disjoint_and_unlabelled_contains_labelled() {
        let labels = cyclic(1000);
        let split = semi_supervised_split(&labels, 10, &spec(50, None, 300), 3).unwrap();
        let validation: HashSet<_> = split.validation.iter().collect();
        assert!(split.labeled.iter().all(|i| !validation.contains(i)));
        assert!(split.unlabeled.iter().all(|i| !validation.contains(i)));
        let unlabeled: HashSet<_> = split.unlabeled.iter().collect();
        assert!(split.labeled.iter().all(|i| unlabeled.contains(i)));
        let mut all = split.unlabeled.clone();
        all.extend(&split.validation);
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn same_seed_same_split_and_different_seed_different_labels() {
        let labels = cyclic(5000);
        let s = spec(100, Some(1000), 500);
        let a = semi_supervised_split(&labels, 10, &s, 42).unwrap();
        let b = semi_supervised_split(&labels, 10, &s, 42).unwrap();
        let c = semi_supervised_split(&labels, 10, &s, 43).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.labeled, c.labeled);
        assert_ne!(a.validation, c.validation);
        assert_ne!(a.unlabeled, c.unlabeled);
    }

    #[test]
    fn remainder_goes_to_the_lowest_classes() {
        let labels = cyclic(1000);
        let split = semi_supervised_split(&labels, 10, &spec(25, None, 0), 1).unwrap();
        assert_eq!(
            counts(&labels, &split.labeled),
            vec![3, 3, 3, 3, 3, 2, 2, 2, 2, 2]
        );
        assert_eq!(class_quotas(3, 10), vec![1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn too_few_examples_of_a_class_names_it() {
        // Class 3 has only 5 examples; everything else has plenty.
        let mut labels = cyclic(1000);
        let mut seen = 0;
        for label in labels.iter_mut().filter(|l| **l == 3) {
            seen += 1;
            if seen > 5 {
                *label = 4;
            }
        }
        let err = semi_supervised_split(&labels, 10, &spec(100, None, 0), 1).unwrap_err();
        assert!(matches!(
            err,
            DataError::NotEnoughExamples {
                class: 3,
                have: 5,
                need: 10
            }
        ));
        assert!(err.to_string().contains("class 3"));
    }

    #[test]
    fn zero_or_all_labelled_means_all_remaining() {
        let labels = cyclic(100);
        for labeled in [0, 80] {
            let split = semi_supervised_split(&labels, 10, &spec(labeled, None, 20), 5).unwrap();
            assert_eq!(split.labeled.len(), 80);
            assert_eq!(split.labeled, split.unlabeled);
        }
        let err = semi_supervised_split(&labels, 10, &spec(1000, None, 20), 5).unwrap_err();
        assert!(
            err.to_string()
                .contains("asked for 1000 labelled examples, but only 80"),
            "{err}"
        );
    }

    #[test]
    fn unlabelled_can_be_capped() {
        let labels = cyclic(1000);
        let split = semi_supervised_split(&labels, 10, &spec(100, Some(300), 100), 9).unwrap();
        assert_eq!(split.unlabeled.len(), 300);
        assert!(is_sorted_unique(&split.unlabeled));
        let validation: HashSet<_> = split.validation.iter().collect();
        assert!(split.unlabeled.iter().all(|i| !validation.contains(i)));
        let err = semi_supervised_split(&labels, 10, &spec(100, Some(901), 100), 9).unwrap_err();
        assert!(matches!(
            err,
            DataError::ImpossibleSplit {
                requested: 901,
                available: 900,
                ..
            }
        ));
    }

    #[test]
    fn impossible_inputs_are_errors() {
        let labels = cyclic(100);
        let err = semi_supervised_split(&labels, 10, &spec(10, None, 100), 0).unwrap_err();
        assert!(matches!(
            err,
            DataError::ImpossibleSplit {
                requested: 100,
                available: 99,
                ..
            }
        ));
        let err = semi_supervised_split(&labels, 0, &spec(10, None, 0), 0).unwrap_err();
        assert!(matches!(err, DataError::NoClasses));
        let err = semi_supervised_split(&labels, 5, &spec(10, None, 0), 0).unwrap_err();
        assert!(matches!(
            err,
            DataError::LabelOutOfRange {
                label: 5,
                index: 5,
                num_classes: 5,
                ..
            }
        ));
    }

    #[test]
    fn works_on_the_embedded_mnist_labels() {
        let pair = crate::data::load_embedded(10).unwrap();
        let split =
            semi_supervised_split(&pair.train.labels, 10, &spec(100, None, 1000), 1).unwrap();
        assert_eq!(counts(&pair.train.labels, &split.labeled), vec![10; 10]);
        assert_eq!(split.unlabeled.len(), 7000);
    }
}
