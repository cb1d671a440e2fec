//! The built-in evaluation set for sentence encoders: 48 sentences written for
//! QLoader, spanning everyday topics, technical text, questions, short and
//! long inputs, numbers, punctuation and a few non-English lines. It is
//! disjoint from the golden-test sentences.

/// The evaluation sentences.
pub const EVAL_SENTENCES: [&str; 48] = [
    "A woman is slicing tomatoes in a small kitchen.",
    "Two children are building a sandcastle on the beach.",
    "The train to Edinburgh was delayed by forty minutes this morning.",
    "She plays the cello in the city orchestra every Thursday.",
    "How do I reset my password if I no longer have access to my email?",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "Heavy rain is expected across the north of the country tonight.",
    "The museum reopened after a three-year renovation of its east wing.",
    "Our quarterly revenue grew by 12 percent compared with last year.",
    "He forgot his umbrella and arrived at the office soaking wet.",
    "Which planet in the solar system has the most moons?",
    "Saturn has more known moons than any other planet.",
    "The vaccine trial enrolled 30,000 volunteers on three continents.",
    "Compile the project in release mode before running the benchmarks.",
    "A memory-mapped file lets the operating system page data in on demand.",
    "The function returns an error if the input slice is empty.",
    "Matrix multiplication dominates the running time of transformer inference.",
    "Lower precision weights reduce memory traffic at the cost of some accuracy.",
    "The cat knocked a glass of water off the table.",
    "A dog is chasing a red ball across the park.",
    "The referee showed him a yellow card for a late tackle.",
    "Tickets for the concert sold out within ten minutes.",
    "The committee will publish its final report in early spring.",
    "I would like to book a table for four at seven o'clock.",
    "Is there a pharmacy open near the central station on Sundays?",
    "The bridge was closed to traffic after inspectors found cracks.",
    "Photosynthesis is how plants turn sunlight into sugar.",
    "The novel follows three generations of a family of fishermen.",
    "Prices of fresh vegetables rose sharply after the drought.",
    "The startup raised $4.5 million to build battery recycling plants.",
    "Please remove the old version before installing the update.",
    "The hikers reached the summit just before the storm arrived.",
    "A violin was found in the attic, wrapped in an old newspaper.",
    "Quantum computers use qubits that can exist in superposition.",
    "The city council approved a new cycle lane along the river.",
    "My flight lands at 6:45 pm, so I'll meet you at the hotel.",
    "The patient was advised to rest and drink plenty of fluids.",
    "Wind turbines generated a record share of electricity last winter.",
    "El perro duerme debajo de la mesa.",
    "La réunion est reportée à la semaine prochaine.",
    "Die Kinder spielen im Garten Fußball.",
    "ok",
    "Thanks!",
    "Error 404: the requested page could not be found.",
    "SELECT name, price FROM products WHERE price < 10 ORDER BY price;",
    "The old lighthouse keeper kept a detailed diary of every ship that passed the rocky \
     headland, noting the weather, the direction of the wind and the colour of each \
     vessel's flag, for more than forty years.",
    "Researchers measured how sleep quality changes when people use screens late at night, \
     and found that dimming the display helped only slightly.",
    "An apple a day keeps the doctor away, or so the saying goes.",
];
