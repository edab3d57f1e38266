"""Training and evaluation of category models: datasets, augmentation, fine-tuning, evaluation reports,
compression and explanations. Independent of storage: services hand it images and labels."""
